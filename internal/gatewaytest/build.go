package gatewaytest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// DefaultPackage is the import path of the gateway's main package: Caddy
// with the standard modules and the accessgate module.
const DefaultPackage = "github.com/accessgate/accessgate/cmd/caddy"

// BinaryEnv names the environment variable that, when set, gives the path
// of a prebuilt Caddy binary for Binary to use instead of building one.
const BinaryEnv = "ACCESSGATE_CADDY_BIN"

// binaryPrefix starts the name of every binary built into os.TempDir.
const binaryPrefix = "accessgate-test-caddy-"

// Package is the main package that Binary builds. Tests of this helper
// point it at another Caddy main package; set it before the first call to
// Binary or Start.
var Package = DefaultPackage

// build is the outcome of building one main package.
type build struct {
	once sync.Once
	path string
	err  error
}

// builds maps a package path to its *build, so each is built once per
// test process.
var builds sync.Map

// Binary returns the path of the Caddy binary that gateways run: the file
// named by $ACCESSGATE_CADDY_BIN if that is set, otherwise Package built
// once per test process by Build.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("gatewaytest: $%s: %v", BinaryEnv, err)
		}
		return p
	}
	return Build(t, Package)
}

// Build builds the main package pkg with go build, from the root of the
// module that contains the test's working directory, into os.TempDir, and
// returns the binary's path. Each package is built once per test process;
// a failed build fails the test with the compiler's output, every time it
// is asked for. Binaries left behind by test processes that have exited
// are removed.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatalf("gatewaytest: building %s: %v", pkg, b.err)
	}
	return b.path
}

func goBuild(pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	removeStaleBinaries()
	name := binaryPrefix + strconv.Itoa(os.Getpid())
	if pkg != DefaultPackage {
		sum := sha256.Sum256([]byte(pkg))
		name += "-" + hex.EncodeToString(sum[:4])
	}
	out := filepath.Join(os.TempDir(), name)
	args := []string{"build", "-o", out, pkg}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(args, " "), root, err, output)
	}
	return out, nil
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above it")
		}
		dir = parent
	}
}

// removeStaleBinaries deletes binaries built by test processes that are no
// longer running.
func removeStaleBinaries() {
	paths, _ := filepath.Glob(filepath.Join(os.TempDir(), binaryPrefix+"*"))
	for _, p := range paths {
		rest := strings.TrimPrefix(filepath.Base(p), binaryPrefix)
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.Remove(p)
	}
}

func processAlive(pid int) bool {
	proc, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = proc.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
