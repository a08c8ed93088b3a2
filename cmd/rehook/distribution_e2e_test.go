package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tools TestDistributionRegistry drives: a real CNCF Distribution
// registry, and crane to push to it.
var distributionTools = []testTool{
	{name: "registry", pkg: "github.com/distribution/distribution/v3/cmd/registry",
		version: "v3.1.2", versionArgs: []string{"--version"}},
	{name: "crane", pkg: "github.com/google/go-containerregistry/cmd/crane",
		version: "v0.22.1", versionArgs: []string{"version"}},
}

// toolsDirEnv names the directory the test tools are looked for and
// installed in, instead of the user cache directory's rehook-test-tools.
const toolsDirEnv = "REHOOK_TEST_TOOLS_DIR"

type testTool struct {
	name, pkg, version string
	versionArgs        []string
}

func (tl testTool) install() string { return tl.pkg + "@" + tl.version }

// testToolsDir is where test tools are cached: $REHOOK_TEST_TOOLS_DIR, or
// rehook-test-tools in the user cache directory.
func testToolsDir() string {
	if d := os.Getenv(toolsDirEnv); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "rehook-test-tools")
}

// find returns a binary of tl at its version, from PATH or dir, or "".
func (tl testTool) find(dir string) string {
	var candidates []string
	if p, err := exec.LookPath(tl.name); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, filepath.Join(dir, tl.name))
	for _, p := range candidates {
		if tl.isVersion(p) {
			return p
		}
	}
	return ""
}

// isVersion says whether the binary at path runs and reports tl.version.
func (tl testTool) isVersion(path string) bool {
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, tl.versionArgs...)
	cmd.Env = []string{"HOME=" + os.TempDir()}
	out, err := cmd.Output()
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(out)) {
		if f == tl.version || strings.HasPrefix(f, tl.version+"+") {
			return true
		}
	}
	return false
}

// needTools returns the paths of tools by name. A missing tool is installed
// with go install when CI is true; otherwise the test is skipped, saying how
// to install it.
func needTools(t *testing.T, tools []testTool) map[string]string {
	t.Helper()
	dir := testToolsDir()
	paths := map[string]string{}
	var missing []testTool
	for _, tl := range tools {
		if p := tl.find(dir); p != "" {
			paths[tl.name] = p
		} else {
			missing = append(missing, tl)
		}
	}
	if len(missing) == 0 {
		return paths
	}

	if ci, _ := strconv.ParseBool(os.Getenv("CI")); !ci {
		var how []string
		for _, tl := range missing {
			how = append(how, fmt.Sprintf("%s %s is not in PATH nor in %s; get it with\n\tGOBIN=%s go install %s",
				tl.name, tl.version, dir, dir, tl.install()))
		}
		t.Skipf("%s\n(with CI=true the test installs them itself; %s sets the directory)",
			strings.Join(how, "\n"), toolsDirEnv)
	}

	// Install into a fresh directory, then rename into dir, so that a
	// concurrent run never sees half a binary.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	timeout := 8 * time.Minute
	if d, ok := t.Deadline(); ok {
		timeout = min(timeout, time.Until(d)-90*time.Second)
	}
	if timeout < time.Minute {
		t.Fatalf("not enough time left before the test deadline to install %v", missing)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, tl := range missing {
		tmp, err := os.MkdirTemp(dir, ".install-"+tl.name+"-")
		if err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		cmd := exec.CommandContext(ctx, "go", "install", tl.install())
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "GOBIN="+tmp)
		out, err := cmd.CombinedOutput()
		if err != nil {
			_ = os.RemoveAll(tmp)
			t.Fatalf("GOBIN=%s go install %s: %v (after %s)\n%s", tmp, tl.install(), err,
				time.Since(begin).Round(time.Second), out)
		}
		err = os.Rename(filepath.Join(tmp, tl.name), filepath.Join(dir, tl.name))
		_ = os.RemoveAll(tmp)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("installed %s into %s in %s", tl.install(), dir, time.Since(begin).Round(time.Second))
		p := filepath.Join(dir, tl.name)
		if !tl.isVersion(p) {
			t.Fatalf("%s installed but does not report version %s", p, tl.version)
		}
		paths[tl.name] = p
	}
	return paths
}

// noNetworkEnv keeps a tool off any host but loopback: no proxy, no trace
// export.
var noNetworkEnv = []string{
	"HTTP_PROXY=", "HTTPS_PROXY=", "ALL_PROXY=", "NO_PROXY=",
	"http_proxy=", "https_proxy=", "all_proxy=", "no_proxy=",
	"OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none",
	"OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none",
}

// freeLoopbackPort returns a loopback port that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// registryConfig is a Distribution v3.1.2 configuration that keeps
// everything in memory and on loopback (no redis, no proxy, no debug server,
// no health checks, no upload purging), and notifies rehook of every event:
// blob pushes and pulls included, which rehook must ignore.
const registryConfig = `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  inmemory:
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:%d
  secret: rehook-e2e-test-secret
notifications:
  endpoints:
    - name: rehook
      url: %s
      headers:
        x-api-key: [%s]
      timeout: 5s
      threshold: 3
      backoff: 1s
`

// startRegistry runs the Distribution registry on 127.0.0.1:port until the
// test ends, and returns once it answers GET /v2/.
func startRegistry(t *testing.T, bin string, port int, notifyURL string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yml")
	cfg := fmt.Sprintf(registryConfig, port, notifyURL, testKey)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", cfgPath)
	// Its own environment alone: no REGISTRY_* overrides, no proxy.
	cmd.Env = append([]string{"HOME=" + dir, "TMPDIR=" + dir}, noNetworkEnv...)
	logs := newLineWaiter()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go logs.consume(pr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		_ = pw.Close()
		exited <- err
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("registry output:\n%s", logs)
		}
	})

	url := fmt.Sprintf("http://127.0.0.1:%d/v2/", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("registry exited before answering: %v\n%s", err, logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer GET %s within 30s (last: %v)\n%s", url, err, logs)
		}
	}
}

// layerTarball writes a gzipped tar of one small file and returns its path.
func layerTarball(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	content := []byte("hello from the rehook distribution test\n")
	if err := tw.WriteHeader(&tar.Header{
		Name: "hello.txt", Mode: 0o644, Size: int64(len(content)),
		ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "layer.tgz")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCrane runs crane with an empty home (no user docker config) and no proxy,
// and returns its trimmed standard output.
func runCrane(t *testing.T, bin string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"HOME=" + home, "DOCKER_CONFIG=" + home, "TMPDIR=" + home},
		noNetworkEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// deliveredEvent is the body rehook sends a receiver for an artifact event.
type deliveredEvent struct {
	Trigger  string `json:"trigger"`
	Registry struct {
		Identifier  string `json:"identifier"`
		PackageType string `json:"packageType"`
	} `json:"registry"`
	Artifact struct {
		Name      string `json:"name"`
		Version   string `json:"version"`
		Tag       string `json:"tag"`
		Digest    string `json:"digest"`
		URL       string `json:"url"`
		MediaType string `json:"mediaType"`
	} `json:"artifact"`
}

func parseDelivered(t *testing.T, h hit) deliveredEvent {
	t.Helper()
	var d deliveredEvent
	if err := json.Unmarshal([]byte(h.body), &d); err != nil {
		t.Fatalf("delivery body is not JSON: %v\n%s", err, h.body)
	}
	if got := h.header.Get("X-Rehook-Trigger"); got != d.Trigger {
		t.Errorf("X-Rehook-Trigger %q, body trigger %q", got, d.Trigger)
	}
	return d
}

// listHookExecutions returns the webhook's executions, newest first.
func listHookExecutions(c client, hookPath string) []map[string]any {
	c.t.Helper()
	out := c.must("GET", hookPath+"/executions?page=0&size=50", "", 200)
	var list []map[string]any
	for _, e := range out["data"].(map[string]any)["executions"].([]any) {
		list = append(list, e.(map[string]any))
	}
	return list
}

func executionID(e map[string]any) int64 { return int64(e["id"].(float64)) }

// TestDistributionRegistry pushes an image with crane to a real Distribution
// registry that notifies rehook, and follows the one delivery of the
// manifest push, its retrigger, and the one delivery of a manifest delete.
func TestDistributionRegistry(t *testing.T) {
	tools := needTools(t, distributionTools)
	registryBin, craneBin := tools["registry"], tools["crane"]

	rcv := newReceiver(t)
	p := start(t, devEnv(t.TempDir(), noNetworkEnv...), "dev")
	base := p.stdout.wait(t, listenLine, 60*time.Second)
	c := client{t: t, base: base, key: testKey}

	ref := "/har/api/v1/registry/acct/org/proj/reg1/+"
	hookPath := ref + "/webhooks/hook1"
	c.must("POST", "/har/api/v1/registry?space_ref=acct/org/proj",
		`{"identifier":"reg1","packageType":"DOCKER"}`, 201)
	c.must("POST", ref+"/webhooks", fmt.Sprintf(`{"identifier":"hook1","name":"Hook 1",
		"url":%q,"enabled":true,"insecure":false,
		"triggers":["ARTIFACT_CREATION","ARTIFACT_DELETION"]}`, rcv.URL+"/hook"), 201)

	port := freeLoopbackPort(t)
	startRegistry(t, registryBin, port, base+ref+"/artifact-events/distribution")
	host := fmt.Sprintf("127.0.0.1:%d", port)
	layer := layerTarball(t)

	// Push: two blobs (layer, config) and the manifest, each notified.
	pushed := runCrane(t, craneBin, "append", "-f", layer, "-t", host+"/app:1.0", "--insecure")
	digest := runCrane(t, craneBin, "digest", host+"/app:1.0", "--insecure")
	if !strings.HasPrefix(digest, "sha256:") || !strings.HasSuffix(pushed, "@"+digest) {
		t.Fatalf("crane append printed %q, crane digest %q", pushed, digest)
	}

	// The registry sends its events in order, each after the one before it
	// was answered: when the manifest's delivery arrives, rehook has answered
	// the blob events before it too, so the list is complete up to it.
	h1 := rcv.next(t)
	d1 := parseDelivered(t, h1)
	if d1.Trigger != "ARTIFACT_CREATION" || d1.Artifact.Name != "app" || d1.Artifact.Tag != "1.0" ||
		d1.Artifact.Digest != digest || d1.Registry.Identifier != "reg1" {
		t.Fatalf("first delivery should be the creation of app:1.0 %s:\n%s", digest, h1.body)
	}
	if got := h1.header.Get("X-Rehook-Retrigger"); got == "true" {
		t.Errorf("first delivery has X-Rehook-Retrigger %q", got)
	}
	execs := listHookExecutions(c, hookPath)
	if len(execs) != 1 {
		t.Fatalf("after the push, %d executions, want 1 (blob pushes must be ignored): %v",
			len(execs), execs)
	}
	id := executionID(execs[0])
	if execs[0]["triggerType"] != "ARTIFACT_CREATION" {
		t.Errorf("execution %d: triggerType %v", id, execs[0]["triggerType"])
	}

	execPath := fmt.Sprintf("%s/executions/%d", hookPath, id)
	done := c.waitFinal(execPath)
	if done["result"] != "SUCCESS" {
		t.Fatalf("execution %d: %v", id, done)
	}
	if body := done["request"].(map[string]any)["body"]; body != h1.body {
		t.Errorf("execution %d recorded body %v, receiver got %s", id, body, h1.body)
	}

	// Retrigger: the same body again, marked as a retrigger.
	out := c.must("GET", execPath+"/retrigger", "", 200)
	re := out["data"].(map[string]any)
	if int64(re["retriggerOf"].(float64)) != id {
		t.Fatalf("retrigger answer: %v", re)
	}
	h2 := rcv.next(t)
	if h2.body != h1.body {
		t.Errorf("retrigger sent another body:\n%s\nwant\n%s", h2.body, h1.body)
	}
	if got := h2.header.Get("X-Rehook-Retrigger"); got != "true" {
		t.Errorf("retrigger delivery: X-Rehook-Retrigger %q, want true", got)
	}
	if h2.header.Get("X-Rehook-Delivery-Id") != h1.header.Get("X-Rehook-Delivery-Id") {
		t.Errorf("retrigger X-Rehook-Delivery-Id %q, original %q",
			h2.header.Get("X-Rehook-Delivery-Id"), h1.header.Get("X-Rehook-Delivery-Id"))
	}
	if again := c.waitFinal(fmt.Sprintf("%s/executions/%d", hookPath, executionID(re))); again["result"] != "SUCCESS" {
		t.Fatalf("retriggered execution: %v", again)
	}

	// Delete the manifest: two events of one request (by digest, by tag),
	// one deletion. A push to another repository after it is the barrier:
	// once its delivery arrives, every event before it has been answered.
	runCrane(t, craneBin, "delete", host+"/app@"+digest, "--insecure")
	runCrane(t, craneBin, "append", "-f", layer, "-t", host+"/barrier:1", "--insecure")
	var deletion, barrier []deliveredEvent
	for range 2 {
		h := rcv.next(t)
		switch d := parseDelivered(t, h); {
		case d.Trigger == "ARTIFACT_DELETION":
			deletion = append(deletion, d)
		case d.Trigger == "ARTIFACT_CREATION" && d.Artifact.Name == "barrier":
			barrier = append(barrier, d)
		default:
			t.Fatalf("unexpected delivery:\n%s", h.body)
		}
	}
	if len(deletion) != 1 || len(barrier) != 1 {
		t.Fatalf("got %d deletions and %d barrier creations, want 1 each", len(deletion), len(barrier))
	}
	if d := deletion[0]; d.Artifact.Name != "app" || d.Artifact.Digest != digest {
		t.Errorf("deletion names %q %q, want app %s", d.Artifact.Name, d.Artifact.Digest, digest)
	}

	execs = listHookExecutions(c, hookPath)
	count := map[string]int{}
	for _, e := range execs {
		count[fmt.Sprint(e["triggerType"])]++
	}
	// The creation, its retrigger, the deletion, the barrier's creation.
	if len(execs) != 4 || count["ARTIFACT_DELETION"] != 1 {
		t.Fatalf("%d executions (%v), want 4 with one deletion: %v", len(execs), count, execs)
	}
	for _, e := range execs {
		if r := c.waitFinal(fmt.Sprintf("%s/executions/%d", hookPath, executionID(e))); r["result"] != "SUCCESS" {
			t.Errorf("execution %d: %v", executionID(e), r)
		}
	}
	select {
	case h := <-rcv.hits:
		t.Errorf("unexpected extra delivery:\n%s", h.body)
	default:
	}
}
