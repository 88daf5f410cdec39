// Package hqserve is `loyalty-hq serve`: it reads head office's YAML
// config, opens the store (sync/hq/hqstore), runs the MQTT ingest (sync/hq)
// and serves a small status page, until the context is cancelled (SIGTERM).
package hqserve
