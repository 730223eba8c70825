package coderapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// ContentTypeTar is the content type of a template archive upload.
const ContentTypeTar = "application/x-tar"

// Upload calls POST /api/v2/files with the archive (coderd/files.go):
// coderd answers 201 with a new file's ID, or 200 with the ID of the same
// bytes uploaded before by the same user. codersdk.UploadResponse carries
// the ID under "hash".
func (c *Client) Upload(ctx context.Context, contentType string, data []byte) (string, error) {
	const path = "/api/v2/files"
	a, err := c.sendRaw(ctx, http.MethodPost, path, contentType, data)
	if err != nil {
		return "", err
	}
	if a.status != http.StatusCreated && a.status != http.StatusOK {
		return "", answerError(http.MethodPost, path, a)
	}
	var out struct {
		ID string `json:"hash"`
	}
	if err := json.Unmarshal(a.body, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("POST %s: no file ID in the answer", path)
	}
	return out.ID, nil
}

// Download calls GET /api/v2/files/{id} and returns the file's bytes.
func (c *Client) Download(ctx context.Context, id string) ([]byte, error) {
	path := "/api/v2/files/" + url.PathEscape(id)
	a, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, answerError(http.MethodGet, path, a)
	}
	return a.body, nil
}

// FileHash is the hex sha256 of the file's bytes, to compare with
// wstemplate.Hash.
func (c *Client) FileHash(ctx context.Context, id string) (string, error) {
	data, err := c.Download(ctx, id)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// sendRaw sends a body that is not JSON.
func (c *Client) sendRaw(ctx context.Context, method, path, contentType string, body []byte) (answer, error) {
	req, err := c.newRequest(ctx, method, path, bytes.NewReader(body), contentType)
	if err != nil {
		return answer{}, err
	}
	return c.exchange(req, path)
}
