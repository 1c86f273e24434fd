package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ramd/ramd/configs"
)

func TestKeygen(t *testing.T) {
	var a, b bytes.Buffer
	if code := run([]string{"keygen"}, &a, &b); code != exitOK {
		t.Fatalf("exit %d: %s", code, b.String())
	}
	key, err := configs.DecodeGossipKey(strings.TrimSpace(a.String()))
	if err != nil || len(key) != 32 {
		t.Fatalf("%q: %d bytes, %v", a.String(), len(key), err)
	}
	var c bytes.Buffer
	run([]string{"keygen"}, &c, &b)
	if c.String() == a.String() {
		t.Fatal("two runs printed the same key")
	}
	if code := run([]string{"keygen", "x"}, &a, &b); code != exitUsage {
		t.Fatalf("keygen x: exit %d", code)
	}
}
