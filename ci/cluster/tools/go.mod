// The cluster's own small programs (standard library and x/sys): the pod sandbox
// (pause), the image writer (mkimage), the API relay into the cluster's
// network namespace (apirelay) and the network smoke test (smoke).
module github.com/tandem-inference/tandem/ci/cluster/tools

go 1.26.0

require golang.org/x/sys v0.50.0
