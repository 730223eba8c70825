package chartrepo

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ociRegistry is a minimal, in-memory OCI distribution endpoint: exactly the
// part of the distribution spec that helm push/pull (oras-go) uses, and
// nothing else. No auth, no deletes, no referrers, sha256 digests only.
//
// Routes (NAME may contain slashes):
//
//	GET  /v2/                                  ping
//	POST /v2/NAME/blobs/uploads/               start an upload (or a monolithic one with ?digest=)
//	PATCH /v2/NAME/blobs/uploads/ID            append a chunk
//	PUT  /v2/NAME/blobs/uploads/ID?digest=D    finish an upload
//	HEAD|GET /v2/NAME/blobs/D                  blob
//	PUT  /v2/NAME/manifests/REF                store a manifest under a tag or digest
//	HEAD|GET /v2/NAME/manifests/REF            manifest by tag or digest
//	GET  /v2/NAME/tags/list                    tags
type ociRegistry struct {
	mu        sync.Mutex
	blobs     map[string][]byte              // digest -> content (shared by all repositories)
	manifests map[string]map[string]manifest // repository -> digest -> manifest
	tags      map[string]map[string]string   // repository -> tag -> digest
	uploads   map[string]*bytes.Buffer       // upload id -> content so far
}

type manifest struct {
	mediaType string
	body      []byte
}

func newRegistry() *ociRegistry {
	return &ociRegistry{
		blobs:     map[string][]byte{},
		manifests: map[string]map[string]manifest{},
		tags:      map[string]map[string]string{},
		uploads:   map[string]*bytes.Buffer{},
	}
}

func (r *ociRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "{}")
		return
	}
	if !strings.HasPrefix(p, "/v2/") {
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "not an OCI distribution path")
		return
	}
	p = strings.TrimPrefix(p, "/v2/")
	switch {
	case strings.HasSuffix(p, "/tags/list"):
		r.tagList(w, req, strings.TrimSuffix(p, "/tags/list"))
	case strings.Contains(p, "/blobs/uploads"):
		name, rest, _ := strings.Cut(p, "/blobs/uploads")
		r.upload(w, req, name, strings.Trim(rest, "/"))
	case strings.Contains(p, "/blobs/"):
		i := strings.LastIndex(p, "/blobs/")
		r.blob(w, req, p[:i], p[i+len("/blobs/"):])
	case strings.Contains(p, "/manifests/"):
		i := strings.LastIndex(p, "/manifests/")
		r.manifest(w, req, p[:i], p[i+len("/manifests/"):])
	default:
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "unknown route "+req.URL.Path)
	}
}

func (r *ociRegistry) upload(w http.ResponseWriter, req *http.Request, name, id string) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	switch {
	case req.Method == http.MethodPost && id == "":
		if d := req.URL.Query().Get("digest"); d != "" { // monolithic upload
			r.finishUpload(w, name, d, body)
			return
		}
		id = newID()
		r.uploads[id] = bytes.NewBuffer(body)
		writeUploadStatus(w, name, id, len(body), http.StatusAccepted)
	case req.Method == http.MethodPatch && id != "":
		buf, ok := r.uploads[id]
		if !ok {
			writeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload "+id)
			return
		}
		buf.Write(body)
		writeUploadStatus(w, name, id, buf.Len(), http.StatusAccepted)
	case req.Method == http.MethodPut && id != "":
		buf, ok := r.uploads[id]
		if !ok {
			writeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload "+id)
			return
		}
		delete(r.uploads, id)
		buf.Write(body)
		r.finishUpload(w, name, req.URL.Query().Get("digest"), buf.Bytes())
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method+" on an upload")
	}
}

// finishUpload stores content under its digest after checking it. The caller
// holds r.mu.
func (r *ociRegistry) finishUpload(w http.ResponseWriter, name, want string, content []byte) {
	if got := digestOf(content); got != want {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("content digest %s, request says %q", got, want))
		return
	}
	r.blobs[want] = bytes.Clone(content)
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+want)
	w.Header().Set("Docker-Content-Digest", want)
	w.WriteHeader(http.StatusCreated)
}

func (r *ociRegistry) blob(w http.ResponseWriter, req *http.Request, _, digest string) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method+" on a blob")
		return
	}
	r.mu.Lock()
	content, ok := r.blobs[digest]
	r.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob "+digest)
		return
	}
	writeContent(w, req, "application/octet-stream", digest, content)
}

func (r *ociRegistry) manifest(w http.ResponseWriter, req *http.Request, name, ref string) {
	switch req.Method {
	case http.MethodPut:
		r.putManifest(w, req, name, ref)
	case http.MethodGet, http.MethodHead:
		r.mu.Lock()
		digest, m, found := r.lookupManifest(name, ref)
		_, repoKnown := r.manifests[name]
		r.mu.Unlock()
		switch {
		case !repoKnown:
			writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository "+name)
		case !found:
			writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest "+name+":"+ref)
		default:
			writeContent(w, req, m.mediaType, digest, m.body)
		}
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method+" on a manifest")
	}
}

func (r *ociRegistry) putManifest(w http.ResponseWriter, req *http.Request, name, ref string) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
		return
	}
	mediaType := req.Header.Get("Content-Type")
	if mediaType == "" {
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(body, &probe)
		mediaType = probe.MediaType
	}
	digest := digestOf(body)
	isDigest := strings.HasPrefix(ref, "sha256:")
	if isDigest && ref != digest {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("manifest digest %s, reference says %s", digest, ref))
		return
	}
	r.mu.Lock()
	if r.manifests[name] == nil {
		r.manifests[name] = map[string]manifest{}
		r.tags[name] = map[string]string{}
	}
	r.manifests[name][digest] = manifest{mediaType: mediaType, body: body}
	if !isDigest {
		r.tags[name][ref] = digest
	}
	r.mu.Unlock()
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.WriteHeader(http.StatusCreated)
}

// lookupManifest resolves a tag or digest. The caller holds r.mu.
func (r *ociRegistry) lookupManifest(name, ref string) (string, manifest, bool) {
	digest := ref
	if !strings.HasPrefix(ref, "sha256:") {
		digest = r.tags[name][ref]
	}
	m, ok := r.manifests[name][digest]
	return digest, m, ok
}

func (r *ociRegistry) tagList(w http.ResponseWriter, req *http.Request, name string) {
	if req.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method+" on tags")
		return
	}
	r.mu.Lock()
	tags, ok := r.tags[name]
	list := make([]string, 0, len(tags))
	for t := range tags {
		list = append(list, t)
	}
	r.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository "+name)
		return
	}
	sort.Strings(list)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"name": name, "tags": list})
}

func writeContent(w http.ResponseWriter, req *http.Request, mediaType, digest string, content []byte) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		_, _ = w.Write(content)
	}
}

func writeUploadStatus(w http.ResponseWriter, name, id string, size, status int) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(size-1, 0)))
	w.WriteHeader(status)
}

// writeError answers in the distribution spec's error format, which oras-go
// turns into messages such as "response status code 404: name unknown".
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": message}},
	})
}

func digestOf(content []byte) string {
	sum := sha256.Sum256(content)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
