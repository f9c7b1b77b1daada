package deploy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root (this package lives one level below it).
func root(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

func readFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clientappExists tells whether the clientapp program is in this checkout
// (it is built on its own branch; the deployment files already name it).
func clientappExists(t testing.TB) bool {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(root(t), "clientapp", "*.go"))
	return len(m) > 0
}

// envVarsRead lists the environment variables a program reads: the string
// literals passed to function calls (getenv("X"), boolVar(getenv, "X"),
// os.Getenv("X"), …) in the non-test Go files under dir that match prefix.
func envVarsRead(t testing.TB, dir string, prefix *regexp.Regexp) []string {
	t.Helper()
	seen := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root(t), dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			for _, a := range call.Args {
				if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil && prefix.MatchString(s) {
						seen[s] = true
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var (
	picardVarRE    = regexp.MustCompile(`^(PICARD|OPENAI)_[A-Z0-9_]+$`)
	clientappVarRE = regexp.MustCompile(`^CLIENTAPP_[A-Z0-9_]+$`)
)

// picardVars is what platform.LoadConfig reads.
func picardVars(t testing.TB) map[string]bool {
	t.Helper()
	vars := envVarsRead(t, "platform", picardVarRE)
	if len(vars) < 5 {
		t.Fatalf("found only %v in platform/: the scanner no longer sees how config is read", vars)
	}
	return set(vars)
}

// clientappVars is what clientapp reads; before clientapp exists in this
// checkout, the list DESIGN.md promises.
func clientappVars(t testing.TB) map[string]bool {
	t.Helper()
	if !clientappExists(t) {
		return set([]string{"CLIENTAPP_PICARD_URL", "CLIENTAPP_PUBLIC_URL", "CLIENTAPP_DATABASE_URL",
			"CLIENTAPP_SECRET_KEY", "CLIENTAPP_CLIENT_ID", "CLIENTAPP_CLIENT_SECRET"})
	}
	vars := envVarsRead(t, "clientapp", clientappVarRE)
	if len(vars) == 0 {
		t.Fatal("found no CLIENTAPP_ variable read in clientapp/: the scanner no longer sees how its config is read")
	}
	return set(vars)
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
