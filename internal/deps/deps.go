// Package deps pins the project's direct dependencies while the packages
// that use them are being written. Remove it once every one is imported.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/gorilla/mux"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "go.etcd.io/raft/v3"
)
