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
