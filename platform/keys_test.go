package platform

import "testing"

func TestSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "rotate", "--dir", "d"}, "keys"},
		{[]string{"--dir", "d", "keys", "rotate"}, "keys"},
		{[]string{"--dir=d", "--dev", "serve", "--http", "x"}, "serve"},
		{[]string{"--dir", "keys"}, ""},
		{nil, ""},
	} {
		if got := subcommand(tc.args); got != tc.want {
			t.Errorf("subcommand(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
