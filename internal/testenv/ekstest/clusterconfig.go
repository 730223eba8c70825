package ekstest

import "net/http"

// serveClusterConfig answers the cluster configuration calls moto 5.2.1
// lacks (UpdateClusterConfig, AssociateEncryptionConfig, ...), as EKS does;
// it reports false for every other request.
func (s *Server) serveClusterConfig(w http.ResponseWriter, r *http.Request) bool {
	return false
}
