// Package dbclass is the database part of the sizing: the RDS instance
// class for a number of peak concurrent users. It is its own package, with
// no imports, so that internal/config can take DB_INSTANCE_CLASS's default
// from it (internal/sizing itself imports config for the node groups): one
// rule for `coderctl size` and the input default, not two tables.
package dbclass

// For is the instance class for users peak concurrent users and the basis
// of the choice. It follows the validated architectures' database nodes
// (2/4/8 vCPU), in the m7i generation the guide uses.
func For(users int) (class, basis string) {
	switch {
	case users <= 1000:
		return "db.m7i.large", "validated architecture up to 1,000 users: 2 vCPU, 8 GB"
	case users <= 2000:
		return "db.m7i.xlarge", "validated architecture up to 2,000 users: 4 vCPU, 16 GB"
	default:
		return "db.m7i.2xlarge", "validated architecture up to 3,000 users: 8 vCPU, 32 GB"
	}
}
