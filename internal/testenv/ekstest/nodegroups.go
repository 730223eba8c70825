package ekstest

import "net/http"

// serveNodegroup answers the node group calls moto 5.2.1 lacks or gets
// wrong, as EKS does; it reports false for every other request.
func (s *Server) serveNodegroup(w http.ResponseWriter, r *http.Request) bool {
	return false
}
