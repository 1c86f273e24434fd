// Package configs reads, completes and validates a ramd node's configuration.
//
// A configuration is built in four steps, each of which can only narrow what
// the previous one produced, so that what the daemon sees is predictable:
//
//  1. Default returns every documented default.
//  2. The TOML file is decoded over it. Unknown keys are errors (a typo such
//     as "probe_intervall" must not silently leave the default in place), as
//     are syntax errors (reported with line and column) and values of the
//     wrong type (reported with the key).
//  3. RAMD_* environment variables override single keys; see below.
//  4. FillDerived fills the defaults that depend on other keys (node_name,
//     state_directory, socket_directory, replication_password,
//     mesh.advertise_port, cluster.primary_port) and makes every path
//     absolute, then Validate collects every remaining problem at once.
//
// Parse runs all four on a byte slice; Load reads the file first. The
// example file configs/ramd.toml lists every key with its default.
//
// # Environment overrides
//
// RAMD_<SECTION>_<KEY>=value sets [section] key, e.g. RAMD_POSTGRESQL_PORT=5433
// or RAMD_MESH_PROBE_INTERVAL=500ms. SECTION is upper case; KEY is the TOML key
// in any case. Lists are comma-separated (RAMD_CLUSTER_JOIN=a:7946,b:7946;
// an empty value gives an empty list). Tables (cluster.tags,
// postgresql.parameters) take k=v,k2=v2 pairs, which are merged into what the
// file set. A backslash escapes a comma, an equals sign or itself. Booleans
// accept true/false, 1/0, on/off and yes/no.
//
// Shortcuts: RAMD_NODE_ID (cluster.node_id), RAMD_CLUSTER_NAME
// (cluster.cluster_name), RAMD_API_PORT (api.port) and RAMD_LOG_LEVEL
// (cluster.log_level).
//
// A variable naming a known section but an unknown key is an error, because
// it is almost certainly a typo. Other RAMD_ variables (RAMD_TOKEN, read by
// ramctl) are ignored. Two different variables setting the same key to
// different values are an error rather than a silent pick.
//
// # Paths
//
// Relative paths (data_directory, state_directory, socket_directory,
// bin_directory, cert_file, key_file) are resolved against the directory
// part of the name given to Parse - the configuration file's directory when
// it is a path, the current directory otherwise - so that a configuration
// means the same thing whatever directory ramd is started from.
package configs
