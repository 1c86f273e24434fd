package configs

import (
	"encoding/base64"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
)

// MeshAdvertiseHost returns the host peers should use for this node's
// addresses: mesh.advertise_addr when set, else mesh.bind_addr unless it is a
// wildcard (0.0.0.0, ::), else "127.0.0.1". The last is a static fallback
// for single-host setups only: with a wildcard bind memberlist itself
// advertises the host's first private IP, which a running daemon should
// prefer (memberlist's LocalNode().Addr) over this guess.
func (c *Config) MeshAdvertiseHost() string {
	if c.Mesh.AdvertiseAddr != "" {
		return c.Mesh.AdvertiseAddr
	}
	if !isWildcard(c.Mesh.BindAddr) {
		return c.Mesh.BindAddr
	}
	return "127.0.0.1"
}

// APIURL returns the base URL of this node's API, without a trailing slash:
// api.advertise_url when set, else http(s)://host:port where host is api.host,
// or MeshAdvertiseHost when api.host is a wildcard.
func (c *Config) APIURL() string {
	if c.API.AdvertiseURL != "" {
		return strings.TrimRight(c.API.AdvertiseURL, "/")
	}
	scheme := "http"
	if c.API.SSLEnabled {
		scheme = "https"
	}
	host := c.API.Host
	if isWildcard(host) {
		host = c.MeshAdvertiseHost()
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(c.API.Port))
}

// EncryptKeyBytes decodes mesh.encrypt_key: nil when it is empty (gossip in
// plaintext), else the 16, 24 or 32 byte AES key memberlist takes. The
// error never contains the key. MeshKey also reads encrypt_key_file.
func (c *Config) EncryptKeyBytes() ([]byte, error) {
	if c.Mesh.EncryptKey == "" {
		return nil, nil
	}
	key, err := DecodeGossipKey(c.Mesh.EncryptKey)
	if err != nil {
		return nil, fmt.Errorf("configs: mesh.encrypt_key: %w", err)
	}
	return key, nil
}

// DecodeGossipKey decodes a base64 gossip key and checks its length (16,
// 24 or 32 bytes for AES-128, -192 or -256). The error never contains the
// text.
func DecodeGossipKey(text string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("not valid base64 (generate a key with: ramd keygen)")
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("decodes to %d bytes; AES needs 16, 24 or 32", len(key))
}

// redacted replaces secrets in Redacted.
const redacted = "<redacted>"

// Redacted returns a copy of c safe to log or serve: postgresql.password,
// postgresql.replication_password, api.auth_token, api.read_token and
// mesh.encrypt_key are replaced by "<redacted>" when set, and so is the
// password inside cluster.coordination_dsn (RedactDSN) (an empty secret stays empty, which
// shows that it is unset). The copy does not pass Validate when
// encrypt_key was set.
func (c *Config) Redacted() *Config {
	r := c.Clone()
	for _, s := range []*string{&r.PostgreSQL.Password, &r.PostgreSQL.ReplicationPassword,
		&r.API.AuthToken, &r.API.ReadToken, &r.Mesh.EncryptKey} {
		if *s != "" {
			*s = redacted
		}
	}
	r.Cluster.CoordinationDSN = RedactDSN(r.Cluster.CoordinationDSN)
	return r
}

// Clone returns a deep copy of c: changing the copy's lists or tables does
// not change c. nil and empty lists and tables are preserved as such.
func (c *Config) Clone() *Config {
	out := new(Config)
	deepCopy(reflect.ValueOf(out).Elem(), reflect.ValueOf(c).Elem())
	return out
}

// deepCopy copies src into dst (of the same type), duplicating slices and
// maps. Reflection keeps Clone correct when fields are added.
func deepCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				deepCopy(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			deepCopy(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		iter := src.MapRange()
		for iter.Next() {
			v := reflect.New(src.Type().Elem()).Elem()
			deepCopy(v, iter.Value())
			m.SetMapIndex(iter.Key(), v)
		}
		dst.Set(m)
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		v := reflect.New(src.Type().Elem())
		deepCopy(v.Elem(), src.Elem())
		dst.Set(v)
	default:
		dst.Set(src)
	}
}
