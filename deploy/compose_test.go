package deploy

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml as docker compose would, schema
// validation and interpolation included, with every profile on and an empty
// environment, so the file's own defaults apply.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	top, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(top, "docker-compose.yml")},
		cli.WithWorkingDirectory(top), cli.WithProfiles([]string{"*"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)

	got := p.ServiceNames()
	sort.Strings(got)
	want := []string{"api", "asynqmon", "migrate", "postgres", "redis", "worker"}
	if !slices.Equal(got, want) {
		t.Fatalf("services: got %v, want %v", got, want)
	}
	if p.Name != "rehook" {
		t.Errorf("project name: got %q, want rehook", p.Name)
	}

	worker := p.Services["worker"]
	if worker.Deploy == nil || worker.Deploy.Replicas == nil || *worker.Deploy.Replicas != 3 {
		t.Errorf("worker: want deploy.replicas 3, got %+v", worker.Deploy)
	}
	if got := p.Services["asynqmon"].Profiles; !slices.Equal(got, []string{"asynqmon"}) {
		t.Errorf("asynqmon profiles: got %v, want [asynqmon] (opt-in beside /monitoring)", got)
	}
}

// TestComposeRehookServices checks the services that run rehook's image.
func TestComposeRehookServices(t *testing.T) {
	p := loadCompose(t)
	settings := documentedSettings(t)

	tests := []struct {
		service string
		command []string
		env     []string // variables that must be set
	}{
		{"migrate", []string{"migrate"}, []string{"REHOOK_DATABASE_URL"}},
		{"api", []string{"api"}, []string{"REHOOK_DATABASE_URL", "REHOOK_REDIS_URL",
			"REHOOK_HTTP_ADDR", "REHOOK_ADMIN_ADDR"}},
		{"worker", []string{"worker"}, []string{"REHOOK_DATABASE_URL", "REHOOK_REDIS_URL",
			"REHOOK_ADMIN_ADDR"}},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			s := p.Services[tt.service]
			if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" ||
				filepath.Clean(s.Build.Context) != filepath.Clean(p.WorkingDir) {
				t.Errorf("build: got %+v, want deploy/Dockerfile with the top folder as context",
					s.Build)
			}
			if !slices.Equal([]string(s.Command), tt.command) {
				t.Errorf("command: got %v, want %v", s.Command, tt.command)
			}
			if s.User != "65532:65532" || !s.ReadOnly {
				t.Errorf("user %q, read_only %v: want 65532:65532 on a read-only root",
					s.User, s.ReadOnly)
			}

			for k := range s.Environment {
				if strings.HasPrefix(k, "REHOOK_") && !settings[k] {
					t.Errorf("environment sets %s, which rehook does not read", k)
				}
			}
			for _, k := range tt.env {
				if v := s.Environment[k]; v == nil || *v == "" {
					t.Errorf("environment lacks %s", k)
				}
			}
			checkComposeURLs(t, s)
		})
	}

	// The health checks ask the admin listener that REHOOK_ADMIN_ADDR opens.
	for _, name := range []string{"api", "worker"} {
		s := p.Services[name]
		admin := portOf(t, *s.Environment["REHOOK_ADMIN_ADDR"])
		want := []string{"CMD", "/rehook", "healthcheck",
			fmt.Sprintf("http://127.0.0.1:%d/readyz", admin)}
		if s.HealthCheck == nil || !slices.Equal([]string(s.HealthCheck.Test), want) {
			t.Errorf("%s healthcheck: got %+v, want test %v", name, s.HealthCheck, want)
		}
	}
}

// checkComposeURLs checks that the database and Redis URLs name the Compose
// services, so nothing reaches outside the project.
func checkComposeURLs(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	for k, host := range map[string]string{
		"REHOOK_DATABASE_URL": "postgres:5432", "REHOOK_REDIS_URL": "redis:6379"} {
		v := s.Environment[k]
		if v == nil {
			continue
		}
		u, err := url.Parse(*v)
		if err != nil {
			t.Errorf("%s does not parse: %v", k, err)
			continue
		}
		if u.Host != host {
			t.Errorf("%s points at %q, want the service %s", k, u.Host, host)
		}
	}
}

func TestComposeHealthAndOrder(t *testing.T) {
	p := loadCompose(t)

	for _, name := range []string{"redis", "postgres", "api", "worker"} {
		hc := p.Services[name].HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Errorf("%s: want an exec-form health check, got %+v", name, hc)
		}
	}

	healthy, done := types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully
	want := map[string]map[string]string{
		"migrate":  {"postgres": healthy},
		"api":      {"migrate": done, "redis": healthy, "postgres": healthy},
		"worker":   {"migrate": done, "redis": healthy, "postgres": healthy},
		"asynqmon": {"redis": healthy},
	}
	for name, deps := range want {
		got := map[string]string{}
		for dep, d := range p.Services[name].DependsOn {
			got[dep] = d.Condition
		}
		if fmt.Sprint(got) != fmt.Sprint(deps) {
			t.Errorf("%s depends_on: got %v, want %v", name, got, deps)
		}
	}
	if r := p.Services["migrate"].Restart; r != "no" {
		t.Errorf("migrate restart: got %q, want no (it runs once)", r)
	}
}

func TestComposeVolumesAndPorts(t *testing.T) {
	p := loadCompose(t)

	mounts := map[string]string{"redis": "redis-data", "postgres": "postgres-data"}
	for name, vol := range mounts {
		if _, ok := p.Volumes[vol]; !ok {
			t.Errorf("volume %s is not declared", vol)
		}
		found := false
		for _, v := range p.Services[name].Volumes {
			found = found || (v.Type == types.VolumeTypeVolume && v.Source == vol)
		}
		if !found {
			t.Errorf("%s: want the named volume %s mounted, got %+v",
				name, vol, p.Services[name].Volumes)
		}
	}
	if len(p.Volumes) != len(mounts) {
		t.Errorf("volumes: got %d, want %d", len(p.Volumes), len(mounts))
	}

	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s:%s: want 127.0.0.1 only",
					name, port.HostIP, port.Published)
			}
		}
	}
	api := p.Services["api"]
	var published []string
	for _, port := range api.Ports {
		published = append(published, fmt.Sprintf("%s->%d", port.Published, port.Target))
	}
	sort.Strings(published)
	if want := []string{"8080->8080", "8081->8081"}; !slices.Equal(published, want) {
		t.Errorf("api ports: got %v, want %v", published, want)
	}
	if len(p.Services["worker"].Ports) != 0 {
		t.Errorf("worker publishes ports; three replicas cannot share them")
	}
}
