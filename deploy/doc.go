// Package deploy holds no code: its tests check the files shipped beside it
// (Prometheus configuration and alerting rules, the Grafana dashboard, the
// systemd unit and `make install`).
package deploy
