package configs

import (
	"testing"
	"time"
)

func TestDurationUnmarshalText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"250ms", 250 * time.Millisecond},
		{"5s", 5 * time.Second},
		{"1m30s", 90 * time.Second},
		{" 2h ", 2 * time.Hour},
		{"1.5s", 1500 * time.Millisecond},
		{"0", 0},
		{"0s", 0},
	} {
		var d Duration
		if err := d.UnmarshalText([]byte(tc.in)); err != nil {
			t.Errorf("%q: %v", tc.in, err)
		} else if d.Duration != tc.want {
			t.Errorf("%q: got %v, want %v", tc.in, d.Duration, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty duration"},
		{"250", `"250ms" or "250s"`},
		{"1.5", `"1.5ms" or "1.5s"`},
		{"5 s", `invalid duration "5 s"`},
		{"fast", `invalid duration "fast"`},
		{"-1s", "negative"},
	} {
		var d Duration
		err := d.UnmarshalText([]byte(tc.in))
		if err == nil {
			t.Errorf("%q: no error", tc.in)
			continue
		}
		wantContains(t, err.Error(), "configs: ", tc.want)
	}
}

func TestDurationUnmarshalTOML(t *testing.T) {
	var d Duration
	if err := d.UnmarshalTOML("5s"); err != nil || d.Duration != 5*time.Second {
		t.Errorf("string: %v %v", d, err)
	}
	if err := d.UnmarshalTOML(int64(0)); err != nil || d.Duration != 0 {
		t.Errorf("integer 0: %v %v", d, err)
	}
	for _, v := range []any{int64(250), 1.5, true, []any{"1s"}} {
		if err := d.UnmarshalTOML(v); err == nil {
			t.Errorf("%#v: no error", v)
		}
	}
}

func TestDurationInTOML(t *testing.T) {
	c := mustParse(t, minimal+"[mesh]\nprobe_interval = \"500ms\"\nprobe_timeout = \"300ms\"\n")
	if c.Mesh.ProbeInterval.Duration != 500*time.Millisecond || c.Mesh.ProbeTimeout.Duration != 300*time.Millisecond {
		t.Errorf("got %v %v", c.Mesh.ProbeInterval, c.Mesh.ProbeTimeout)
	}
	msg := parseErr(t, minimal+"[mesh]\n\nprobe_interval = 250\n")
	wantContains(t, msg, "configs: ramd.toml: line 7: mesh.probe_interval:", `"250ms"`)
	msg = parseErr(t, minimal+"[mesh]\nprobe_interval = true\n")
	wantContains(t, msg, "mesh.probe_interval", "boolean")
}

func TestDurationMarshalText(t *testing.T) {
	for _, d := range []time.Duration{0, 50 * time.Millisecond, 90 * time.Second, 36*time.Hour + time.Nanosecond} {
		text, err := Duration{d}.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := back.UnmarshalText(text); err != nil || back.Duration != d {
			t.Errorf("%v -> %q -> %v, %v", d, text, back.Duration, err)
		}
	}
}
