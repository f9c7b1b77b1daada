package platform

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// retentionVar reads a retention such as "90d" or "720h"; empty is 0
// (the default applies).
func retentionVar(getenv func(string) string, name string) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 36500 {
			return 0, &ConfigError{name, fmt.Sprintf("%q is not a number of days like 90d", v)}
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Hour {
		return 0, &ConfigError{name, fmt.Sprintf("%q is not a retention like 90d or 720h (at least 1h)", v)}
	}
	return d, nil
}
