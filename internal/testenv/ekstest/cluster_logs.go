package ekstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// LogGroupName is where EKS sends a cluster's control-plane logs.
func LogGroupName(cluster string) string { return "/aws/eks/" + cluster + "/cluster" }

// ensureLogGroup makes the cluster's log group in moto's CloudWatch Logs,
// as EKS does when control-plane logging is turned on (EKS keeps a group
// that already exists, with its retention). It may be called with s.mu
// held: moto does not call back.
func (s *Server) ensureLogGroup(ctx context.Context, region, cluster string) {
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.moto.String()),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
	_, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(LogGroupName(cluster))})
	var exists *logstypes.ResourceAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		s.faultMu.Lock()
		s.faults = append(s.faults, fmt.Errorf("creating log group %s in moto: %w", LogGroupName(cluster), err))
		s.faultMu.Unlock()
	}
}

// Faults returns what went wrong inside the double itself (not answers to
// the client), for tests to fail on.
func (s *Server) Faults() []error {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return append([]error(nil), s.faults...)
}

// fetchCluster asks moto for the cluster, answering EKS's error itself
// when it does not exist.
func (s *Server) fetchCluster(w http.ResponseWriter, r *http.Request, cluster string) (map[string]any, bool) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.moto.JoinPath("clusters", cluster).String(), nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "ServerException", err.Error())
		return nil, false
	}
	// moto takes the region from the credential scope of the signature.
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "ServerException", err.Error())
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "No cluster found for name: "+cluster+".")
		return nil, false
	}
	raw, err := io.ReadAll(resp.Body)
	var out struct {
		Cluster map[string]any `json:"cluster"`
	}
	if err == nil {
		err = json.Unmarshal(raw, &out)
	}
	if err != nil || out.Cluster == nil {
		writeError(w, http.StatusInternalServerError, "ServerException", fmt.Sprintf("moto's cluster %s: %v", cluster, err))
		return nil, false
	}
	return out.Cluster, true
}
