package deploy

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, USER...
	args string
	line int
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from string // the FROM line's arguments
	body []instruction
}

// parseDockerfile reads the instructions of a Dockerfile into its stages. It
// knows what this repository's Dockerfile uses: comments, blank lines,
// backslash continuations; no parser directives or heredocs.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	var stages []stage
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if rest, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)

		cmd, args, _ := strings.Cut(cur.String(), " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		cur.Reset()
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in.args})
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: ends inside a continued line", path)
	}
	return stages
}

// find returns the stage's instructions of one kind.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// buildLine is the Dockerfile's go build command, split into words.
func buildLine(t *testing.T, stages []stage) []string {
	t.Helper()
	for _, s := range stages {
		for _, in := range s.find("RUN") {
			if strings.Contains(in.args, "go build") {
				return shellWords(t, in.args)
			}
		}
	}
	t.Fatal("Dockerfile has no RUN with go build")
	return nil
}

// shellWords splits a command line the way a shell would for the quoting
// the Dockerfile uses: spaces separate words, double quotes group them.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			if strings.ContainsRune("'\\`;&|<>", r) {
				t.Fatalf("build line %q uses %q, which this test does not parse", s, r)
			}
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("build line %q has an open quote", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func TestDockerfileStages(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) != 2 {
		t.Fatalf("stages: got %d, want 2 (build, then the image)", len(stages))
	}

	build, final := stages[0], stages[1]
	if !strings.HasPrefix(build.from, "golang:1.26") || !strings.HasSuffix(build.from, " AS build") {
		t.Errorf("build stage FROM %q: want golang:1.26... AS build", build.from)
	}
	words := buildLine(t, stages)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/rehook"} {
		if !slices.Contains(words, want) {
			t.Errorf("build line %q lacks %s", words, want)
		}
	}
	if i := slices.Index(words, "-ldflags"); i < 0 || i+1 == len(words) ||
		!strings.Contains(words[i+1], "-s -w -X main.version=${VERSION}") {
		t.Errorf("build line %q: want -ldflags \"-s -w -X main.version=${VERSION}\"", words)
	}

	// The image: a static base with no shell, a numeric non-root user, and
	// exec-form commands, since there is no shell to run any other form.
	base := strings.Fields(final.from)[0]
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("image FROM %q: want scratch or gcr.io/distroless/static", base)
	}
	if runs := final.find("RUN"); len(runs) > 0 {
		t.Errorf("image stage runs %q: its base has no shell", runs[0].args)
	}
	users := final.find("USER")
	if len(users) != 1 {
		t.Fatalf("image stage: got %d USER lines, want 1", len(users))
	}
	uid, gid, _ := strings.Cut(users[0].args, ":")
	for _, id := range []string{uid, gid} {
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("USER %q: want numeric, non-root ids (uid:gid)", users[0].args)
		}
	}
	for _, cmd := range []string{"ENTRYPOINT", "CMD"} {
		ins := final.find(cmd)
		if len(ins) != 1 {
			t.Errorf("image stage: got %d %s lines, want 1", len(ins), cmd)
			continue
		}
		var argv []string
		if err := json.Unmarshal([]byte(ins[0].args), &argv); err != nil || len(argv) == 0 {
			t.Errorf("%s %s: want the exec (JSON array) form", cmd, ins[0].args)
		}
	}
	if ep := final.find("ENTRYPOINT"); len(ep) == 1 && ep[0].args != `["/rehook"]` {
		t.Errorf("ENTRYPOINT %s: want [\"/rehook\"]", ep[0].args)
	}
	copies := final.find("COPY")
	if len(copies) != 1 || !strings.HasPrefix(copies[0].args, "--from=build ") ||
		!strings.HasSuffix(copies[0].args, " /rehook") {
		t.Errorf("image stage COPY: got %v, want the binary alone from the build stage", copies)
	}
}

// TestDockerfileBuildIsStatic runs the Dockerfile's go build line here, as
// the build stage would, and checks the binary: static, stripped, without
// this machine's paths, and reporting the version it was given.
func TestDockerfileBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rehook from scratch; skipped with -short")
	}
	words := buildLine(t, parseDockerfile(t, "Dockerfile"))
	const version = "9.8.7-deploy-test"
	out := filepath.Join(t.TempDir(), "rehook")

	var env, argv []string
	for i := 0; i < len(words); i++ {
		w := strings.ReplaceAll(words[i], "${VERSION}", version)
		switch {
		case len(argv) == 0 && strings.Contains(w, "="):
			env = append(env, w)
		case w == "-o" && i+1 < len(words):
			argv = append(argv, "-o", out)
			i++
		default:
			argv = append(argv, w)
		}
	}
	if len(argv) < 2 || argv[0] != "go" || argv[1] != "build" {
		t.Fatalf("build line %q: want go build after the variables", words)
	}

	top, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = top
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", strings.Join(env, " "), strings.Join(argv, " "), err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %s program header: it is not static", p.Type)
		}
	}
	for _, name := range []string{".interp", ".dynamic", ".symtab"} {
		if f.Section(name) != nil {
			t.Errorf("binary has a %s section: want a static, stripped binary", name)
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(top)) {
		t.Errorf("binary contains the build folder %s: want -trimpath", top)
	}

	got, err := exec.Command(out, "version").Output()
	if err != nil {
		t.Fatalf("rehook version: %v", err)
	}
	if want := "rehook " + version; strings.TrimSpace(string(got)) != want {
		t.Errorf("rehook version: got %q, want %q", strings.TrimSpace(string(got)), want)
	}
}
