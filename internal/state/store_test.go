package state

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coderctl/coderctl/internal/fault"
)

func TestStoreSetPersistsImmediately(t *testing.T) {
	path := writeTemp(t, "# inputs\nAWS_REGION=us-east-1\n")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path || s.Get("AWS_REGION") != "us-east-1" {
		t.Fatalf("Open: path %q, AWS_REGION %q", s.Path(), s.Get("AWS_REGION"))
	}
	if err := s.Set("VPC_ID", "vpc-0abc"); err != nil {
		t.Fatal(err)
	}
	onDisk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := onDisk.Get("VPC_ID"); v != "vpc-0abc" {
		t.Errorf("VPC_ID on disk = %q right after Set", v)
	}
	if mode := fileModeOf(t, path); mode != 0o600 {
		t.Errorf("mode %o after Set", mode)
	}
	if v, ok := s.Lookup("VPC_ID"); !ok || v != "vpc-0abc" {
		t.Errorf("Lookup(VPC_ID) = %q, %v", v, ok)
	}
	if _, ok := s.Lookup("NOPE"); ok || s.Get("NOPE") != "" {
		t.Error("a missing key is reported as set")
	}
}

func TestStoreSkipsUnchangedWrites(t *testing.T) {
	path := writeTemp(t, "A=1\n")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	before := inode(t, path)
	if err := s.Set("A", "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMany(map[string]string{"A": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Unset("NOT_THERE"); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) != before {
		t.Error("an unchanged Set rewrote the file")
	}
	if err := s.Set("A", "2"); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) == before {
		t.Error("a changed Set did not rewrite the file")
	}
}

func TestStoreSetManyIsOneSortedAllOrNothingWrite(t *testing.T) {
	path := writeTemp(t, "A=1\n")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.SetMany(map[string]string{"ZED": "z", "ALPHA": "a", "DB_PASSWORD": "hunter2", "A": "changed"})
	wantInputError(t, err, "DB_PASSWORD")
	if got, _ := os.ReadFile(path); string(got) != "A=1\n" {
		t.Errorf("a refused SetMany changed the file to %q", got)
	}
	if s.Get("A") != "1" || s.Get("ALPHA") != "" {
		t.Error("a refused SetMany changed memory")
	}

	if err := s.SetMany(map[string]string{"ZED": "z", "ALPHA": "a", "MID": "it's"}); err != nil {
		t.Fatal(err)
	}
	want := "A=1\n\n" + OutputsMarker + "\nALPHA=a\nMID=\"it's\"\nZED=z\n"
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("file %q, want %q", got, want)
	}
}

func TestStoreUnset(t *testing.T) {
	path := writeTemp(t, "A=1\nB=2\nC=3\n")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unset("A", "C", "NONE"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "B=2\n" {
		t.Errorf("file %q after Unset", got)
	}
	if got := s.Snapshot(); !reflect.DeepEqual(got, map[string]string{"B": "2"}) {
		t.Errorf("Snapshot %q", got)
	}
}

func TestStoreWriteFailureKeepsMemoryAsOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", "coder-infra.env")
	s := NewStore(path, mustParse(t, "A=1\n"))
	if err := s.Set("A", "2"); err == nil {
		t.Fatal("Set into a missing directory succeeded")
	}
	if got := s.Get("A"); got != "1" {
		t.Errorf("Get(A) = %q after a failed write, want the old 1", got)
	}
}

func TestStoreFileAndSnapshotAreCopies(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "coder-infra.env"), nil)
	if err := s.Set("A", "1"); err != nil {
		t.Fatal(err)
	}
	f := s.File()
	if err := f.Set("A", "changed"); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	snap["A"] = "changed"
	if s.Get("A") != "1" {
		t.Error("editing File() or Snapshot() changed the store")
	}
}

// TestStoreConcurrentSets runs stages' writes at once: every output lands
// and the file stays parseable (run with -race).
func TestStoreConcurrentSets(t *testing.T) {
	path := writeTemp(t, "# inputs\nAWS_REGION=us-east-1\n")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const workers, perWorker = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				key := fmt.Sprintf("STAGE%d_OUT%d", w, i)
				if err := s.Set(key, fmt.Sprintf("value '%d' \"%d\" ok", w, i)); err != nil {
					errs <- err
				}
				_ = s.Snapshot()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	onDisk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(onDisk.Keys()); got != workers*perWorker+1 {
		t.Errorf("%d keys on disk, want %d", got, workers*perWorker+1)
	}
	if v, _ := onDisk.Get("STAGE3_OUT7"); v != `value '3' "7" ok` {
		t.Errorf("STAGE3_OUT7 = %q", v)
	}
	if n := strings.Count(string(onDisk.Bytes()), OutputsMarker); n != 1 {
		t.Errorf("marker appears %d times", n)
	}
}

// TestKilledWriterLeavesParseableFile kills a process that rewrites the
// state file as fast as it can, several times, and parses what it left.
func TestKilledWriterLeavesParseableFile(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := writeTemp(t, "# inputs\nAWS_REGION=us-east-1\n")
	for round := 0; round < 3; round++ {
		child, _ := startChild(t, "write-forever", path, "writing")
		time.Sleep(time.Duration(50+round*40) * time.Millisecond)
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		f, err := Load(path)
		if err != nil {
			t.Fatalf("round %d: the file a killed writer left does not parse: %v", round, err)
		}
		if v, _ := f.Get("AWS_REGION"); v != "us-east-1" {
			t.Fatalf("round %d: AWS_REGION = %q", round, v)
		}
		if len(f.Keys()) < 2 {
			t.Errorf("round %d: the writer recorded nothing (%d keys)", round, len(f.Keys()))
		}
	}
}

// TestStoreKeepsHandEdits: the user edits the file while a run writes it.
// The call's own keys get the call's values; everything else is as the user
// left it, on disk and in memory.
func TestStoreKeepsHandEdits(t *testing.T) {
	m := "\n" + OutputsMarker + "\n"
	deleted := "<deleted>"
	cases := []struct {
		name      string
		start     string
		edit      string // the file after the hand edit; deleted removes it
		call      func(*Store) error
		want      string
		unwritten bool // the edit already says what the call says
	}{
		{"new key kept", "AWS_REGION=us-east-1\n", "AWS_REGION=us-east-1\nCODER_VERSION=2.1\n",
			set("VPC_ID", "vpc-1"), "AWS_REGION=us-east-1\nCODER_VERSION=2.1\n" + m + "VPC_ID=vpc-1\n", false},
		{"changed USERS kept", "USERS=alice\n" + m + "VPC_ID=vpc-1\n", "USERS='alice bob'\n" + m + "VPC_ID=vpc-1\n",
			set("SUBNET_IDS", "a,b"), "USERS='alice bob'\n" + m + "VPC_ID=vpc-1\nSUBNET_IDS=a,b\n", false},
		{"comment, export and order kept", "A=1\nB=2\n", "# mine\nexport B=2\nA=1 # first\n",
			set("A", "one"), "# mine\nexport B=2\nA='one' # first\n", false},
		{"removed key stays removed", "A=1\nB=2\n", "B=2\n",
			set("C", "3"), "B=2\n" + m + "C=3\n", false},
		{"the call's key: the call wins", "VPC_ID=vpc-1\n", "VPC_ID=vpc-hand\n",
			set("VPC_ID", "vpc-2"), "VPC_ID=vpc-2\n", false},
		{"unset on an edited file", "A=1\nB=2\n", "A=1\nB=2\nUSERS=carol\n",
			unset("A"), "B=2\nUSERS=carol\n", false},
		{"edit already has the value", "A=1\n", "A=1\nB=2\n",
			set("B", "2"), "A=1\nB=2\n", true},
		{"unset of a key the user removed", "A=1\nB=2\n", "B=2\n",
			unset("A"), "B=2\n", true},
		{"deleted file recreated from the run's copy", "A=1\n", deleted,
			set("B", "2"), "A=1\n" + m + "B=2\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, c.start)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.edit == deleted {
				err = os.Remove(path)
			} else {
				err = os.WriteFile(path, []byte(c.edit), 0o600) // in place, as editors with backupcopy do
			}
			if err != nil {
				t.Fatal(err)
			}
			var before uint64
			if c.unwritten {
				before = inode(t, path)
			}
			if err := c.call(s); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); string(got) != c.want {
				t.Errorf("file %q, want %q", got, c.want)
			}
			if c.unwritten && inode(t, path) != before {
				t.Error("the file was rewritten though the edit already held the change")
			}
			if got, want := s.Snapshot(), mustParse(t, c.want).Map(); !reflect.DeepEqual(got, want) {
				t.Errorf("Snapshot %q, want the merged file's %q", got, want)
			}
		})
	}
}

func set(key, value string) func(*Store) error {
	return func(s *Store) error { return s.Set(key, value) }
}

func unset(keys ...string) func(*Store) error {
	return func(s *Store) error { return s.Unset(keys...) }
}

// TestStoreHandEditsBetweenSets interleaves a run's writes with the user's
// edits, each edit building on the file the run wrote.
func TestStoreHandEditsBetweenSets(t *testing.T) {
	path := writeTemp(t, "# inputs\nUSERS=alice\n")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	handEdit := func(old, new string) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(data), old) {
			t.Fatalf("file %q (%v) lacks %q", data, err, old)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		do   func()
		want map[string]string
	}{
		{func() { mustDo(t, s.Set("VPC_ID", "vpc-1")) }, map[string]string{"USERS": "alice", "VPC_ID": "vpc-1"}},
		{func() { handEdit("USERS=alice", "USERS='alice bob'\nCODER_VERSION=2.1") }, nil},
		{func() { mustDo(t, s.Set("CLUSTER_ENDPOINT", "https://eks")) },
			map[string]string{"USERS": "alice bob", "CODER_VERSION": "2.1", "VPC_ID": "vpc-1", "CLUSTER_ENDPOINT": "https://eks"}},
		{func() { handEdit("CODER_VERSION=2.1\n", "") }, nil},
		{func() { handEdit("USERS='alice bob'", "USERS=carol") }, nil},
		{func() { mustDo(t, s.SetMany(map[string]string{"RDS_ENDPOINT": "db", "VPC_ID": "vpc-2"})) },
			map[string]string{"USERS": "carol", "VPC_ID": "vpc-2", "CLUSTER_ENDPOINT": "https://eks", "RDS_ENDPOINT": "db"}},
		{func() { mustDo(t, s.Unset("CLUSTER_ENDPOINT")) },
			map[string]string{"USERS": "carol", "VPC_ID": "vpc-2", "RDS_ENDPOINT": "db"}},
	}
	for i, step := range steps {
		step.do()
		if step.want == nil {
			continue
		}
		onDisk, err := Load(path)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := onDisk.Map(); !reflect.DeepEqual(got, step.want) {
			t.Errorf("step %d: file holds %q, want %q", i, got, step.want)
		}
		if got := s.Snapshot(); !reflect.DeepEqual(got, step.want) {
			t.Errorf("step %d: Snapshot %q, want %q", i, got, step.want)
		}
	}
	if got, _ := os.ReadFile(path); !strings.HasPrefix(string(got), "# inputs\nUSERS=carol\n") {
		t.Errorf("the user's lines moved: %q", got)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestStoreDoesNotOverwriteBrokenEdit: a hand edit that leaves the file
// unparsable, or no longer a regular writable file, stops the write with
// an error of the run (exit 1) and leaves the file exactly as it is.
func TestStoreDoesNotOverwriteBrokenEdit(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(t *testing.T, path string)
		wants []string
	}{
		{"unparsable line", writeFile("A=1\nhalf-typed line\n"),
			[]string{":2:", "edited during this run and no longer parses", "nothing was overwritten"}},
		{"secret added", writeFile("A=1\nDB_PASSWORD=hunter2\n"),
			[]string{":2:", "DB_PASSWORD", "nothing was overwritten"}},
		{"made read-only", func(t *testing.T, path string) { mustDo(t, os.Chmod(path, 0o400)) },
			[]string{"read-only", "will not replace it"}},
		{"replaced by a FIFO", func(t *testing.T, path string) {
			mustDo(t, os.Remove(path))
			mustDo(t, syscall.Mkfifo(path, 0o600))
		}, []string{"named pipe", "nothing was overwritten"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "A=1\n")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			c.edit(t, path)
			before := describeFile(t, path)
			err = s.Set("VPC_ID", "vpc-1")
			if err == nil || fault.IsInput(err) || fault.ExitCode(err) != fault.ExitFailed {
				t.Fatalf("Set = %v (exit %d), want a failed run (exit 1)", err, fault.ExitCode(err))
			}
			for _, w := range append(c.wants, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if after := describeFile(t, path); after != before {
				t.Errorf("the file changed from %s to %s", before, after)
			}
			if _, ok := s.Lookup("VPC_ID"); ok {
				t.Error("the refused change is in memory")
			}
		})
	}
}

func writeFile(data string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) { mustDo(t, os.WriteFile(path, []byte(data), 0o600)) }
}

// describeFile sums up a file's identity, mode and (for a regular file)
// content, without opening anything else.
func describeFile(t *testing.T, path string) string {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	content := ""
	if info.Mode().IsRegular() {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		content = string(data)
	}
	return fmt.Sprintf("inode %d mode %v content %q", statIno(info), info.Mode(), content)
}

// TestStoreResumesAfterEditIsFixed: once the user fixes the file, the next
// write merges as usual.
func TestStoreResumesAfterEditIsFixed(t *testing.T) {
	path := writeTemp(t, "A=1\n")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile("A=1\nUSERS=\"x\n")(t, path)
	if err := s.Set("B", "2"); err == nil {
		t.Fatal("Set over an unparsable edit succeeded")
	}
	writeFile("A=1\nUSERS=x\n")(t, path)
	if err := s.Set("B", "2"); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Snapshot(), map[string]string{"A": "1", "USERS": "x", "B": "2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Snapshot %q, want %q", got, want)
	}
}
