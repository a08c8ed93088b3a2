package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const manifestDir = "kubernetes"

// manifests are the objects of deploy/kubernetes, decoded strictly into the
// Kubernetes API types: an unknown or misspelt field, a wrong type or a bad
// quantity fails the decoding.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        map[string]*policyv1.PodDisruptionBudget
	jobs        map[string]*batchv1.Job
}

// kustomization is the part of kustomization.yaml that rehook uses.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images"`
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func loadManifests(t *testing.T) (manifests, kustomization) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(manifestDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml is a %s %s", k.APIVersion, k.Kind)
	}

	// Every manifest in the folder is a resource of the kustomization.
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources: got %v, want the folder's manifests %v", got, want)
	}

	m := manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		jobs:        map[string]*batchv1.Job{},
	}
	for _, name := range k.Resources {
		raw, err := os.ReadFile(filepath.Join(manifestDir, name))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(raw), -1) {
			if len(bytes.TrimSpace([]byte(doc))) == 0 {
				continue
			}
			m.add(t, fmt.Sprintf("%s#%d", name, i), []byte(doc))
		}
	}
	return m, k
}

// add decodes one document into the type its apiVersion and kind name.
func (m manifests) add(t *testing.T, where string, doc []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", where, err)
	}

	var obj interface{ GetName() string }
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		m.deployments[decode(t, where, doc, o)] = o
		obj = o
	case "v1 Service":
		o := &corev1.Service{}
		m.services[decode(t, where, doc, o)] = o
		obj = o
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		m.configMaps[decode(t, where, doc, o)] = o
		obj = o
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		m.pdbs[decode(t, where, doc, o)] = o
		obj = o
	case "batch/v1 Job":
		o := &batchv1.Job{}
		m.jobs[decode(t, where, doc, o)] = o
		obj = o
	default:
		t.Fatalf("%s: unexpected %s %s", where, tm.APIVersion, tm.Kind)
	}
	for _, msg := range validation.IsDNS1123Subdomain(obj.GetName()) {
		t.Errorf("%s: name %q: %s", where, obj.GetName(), msg)
	}
}

// decode fills obj from doc strictly and returns its name.
func decode[T interface{ GetName() string }](t *testing.T, where string, doc []byte, obj T) string {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: does not decode strictly: %v", where, err)
	}
	if obj.GetName() == "" {
		t.Fatalf("%s: no metadata.name", where)
	}
	return obj.GetName()
}

func TestKubernetesObjects(t *testing.T) {
	m, _ := loadManifests(t)

	tests := []struct {
		kind string
		got  []string
		want []string
	}{
		{"Deployment", slices.Sorted(maps.Keys(m.deployments)),
			[]string{"rehook-api", "rehook-worker"}},
		{"Service", slices.Sorted(maps.Keys(m.services)), []string{"rehook-api"}},
		{"ConfigMap", slices.Sorted(maps.Keys(m.configMaps)), []string{"rehook"}},
		{"PodDisruptionBudget", slices.Sorted(maps.Keys(m.pdbs)),
			[]string{"rehook-api", "rehook-worker"}},
		{"Job", slices.Sorted(maps.Keys(m.jobs)), []string{"rehook-migrate"}},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s objects: got %v, want %v", tt.kind, tt.got, tt.want)
		}
	}
}

// TestKubernetesSettings checks the ConfigMap: settings rehook reads, with
// values it accepts.
func TestKubernetesSettings(t *testing.T) {
	m, _ := loadManifests(t)
	cm := m.configMaps["rehook"]
	if cm == nil {
		t.Fatal("no ConfigMap rehook")
	}
	settings := documentedSettings(t)

	for k, v := range cm.Data {
		if !settings[k] {
			t.Errorf("ConfigMap sets %s, which rehook does not read", k)
		}
		if strings.HasSuffix(k, "_TIMEOUT") || strings.HasSuffix(k, "_INTERVAL") {
			if d, err := time.ParseDuration(v); err != nil || d <= 0 {
				t.Errorf("ConfigMap %s=%q: want a positive Go duration", k, v)
			}
		}
		if strings.HasSuffix(k, "_ADDR") && !strings.HasPrefix(v, "0.0.0.0:") {
			t.Errorf("ConfigMap %s=%q: a pod must listen on 0.0.0.0 to be reached", k, v)
		}
	}
	for _, k := range []string{"REHOOK_DATABASE_URL", "REHOOK_REDIS_URL"} {
		if _, ok := cm.Data[k]; ok {
			t.Errorf("ConfigMap sets %s: it holds a password, keep it in the Secret", k)
		}
	}
	for _, k := range []string{"REHOOK_HTTP_ADDR", "REHOOK_ADMIN_ADDR", "REHOOK_LOG_FORMAT",
		"REHOOK_SHUTDOWN_TIMEOUT"} {
		if cm.Data[k] == "" {
			t.Errorf("ConfigMap lacks %s", k)
		}
	}
}

// workload is a pod template with what rehook's manifests promise about it.
type workload struct {
	name      string
	pod       corev1.PodTemplateSpec
	args      []string
	probes    bool     // liveness and readiness on the admin port
	secretEnv []string // variables that must come from the Secret
}

func workloads(m manifests) []workload {
	var out []workload
	if d := m.deployments["rehook-api"]; d != nil {
		out = append(out, workload{"rehook-api", d.Spec.Template, []string{"api"}, true,
			[]string{"REHOOK_DATABASE_URL", "REHOOK_REDIS_URL"}})
	}
	if d := m.deployments["rehook-worker"]; d != nil {
		out = append(out, workload{"rehook-worker", d.Spec.Template, []string{"worker"}, true,
			[]string{"REHOOK_DATABASE_URL", "REHOOK_REDIS_URL"}})
	}
	if j := m.jobs["rehook-migrate"]; j != nil {
		out = append(out, workload{"rehook-migrate", j.Spec.Template, []string{"migrate"}, false,
			[]string{"REHOOK_DATABASE_URL"}})
	}
	return out
}

func TestKubernetesPods(t *testing.T) {
	m, k := loadManifests(t)
	cm := m.configMaps["rehook"]
	if cm == nil {
		t.Fatal("no ConfigMap rehook")
	}
	settings := documentedSettings(t)
	adminPort := int32(portOf(t, cm.Data["REHOOK_ADMIN_ADDR"]))
	shutdown, err := time.ParseDuration(cm.Data["REHOOK_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("REHOOK_SHUTDOWN_TIMEOUT: %v", err)
	}
	var images []string
	for _, img := range k.Images {
		images = append(images, img.Name)
	}

	ws := workloads(m)
	if len(ws) != 3 {
		t.Fatalf("got %d workloads, want the api, the worker and the migration", len(ws))
	}
	for _, w := range ws {
		t.Run(w.name, func(t *testing.T) {
			spec := w.pod.Spec
			psc := spec.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
				psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.SeccompProfile == nil ||
				psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod securityContext %+v: want runAsNonRoot, a non-zero runAsUser "+
					"and the RuntimeDefault seccomp profile", psc)
			}
			if a := spec.AutomountServiceAccountToken; a == nil || *a {
				t.Errorf("automountServiceAccountToken: want false, rehook needs no API token")
			}
			if len(spec.Containers) != 1 {
				t.Fatalf("got %d containers, want 1", len(spec.Containers))
			}

			c := spec.Containers[0]
			if !slices.Contains(images, c.Image) {
				t.Errorf("image %q: want one kustomization.yaml sets (%v)", c.Image, images)
			}
			if !slices.Equal(c.Args, w.args) || len(c.Command) != 0 {
				t.Errorf("command %v args %v: want the image's entrypoint with args %v",
					c.Command, c.Args, w.args)
			}
			checkContainerSecurity(t, c)
			checkResources(t, c)
			checkEnv(t, c, w.secretEnv, settings, m)

			if !w.probes {
				return
			}
			checkProbes(t, c, adminPort)
			grace := spec.TerminationGracePeriodSeconds
			if grace == nil || time.Duration(*grace)*time.Second <= shutdown {
				t.Errorf("terminationGracePeriodSeconds %v: want more than "+
					"REHOOK_SHUTDOWN_TIMEOUT (%s)", grace, shutdown)
			}
		})
	}

	j := m.jobs["rehook-migrate"]
	if rp := j.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure &&
		rp != corev1.RestartPolicyNever {
		t.Errorf("migrate Job restartPolicy %q: want OnFailure or Never", rp)
	}
	if j.Spec.BackoffLimit == nil {
		t.Errorf("migrate Job: want a backoffLimit")
	}
}

func checkContainerSecurity(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext %+v: want no privilege escalation, a read-only "+
			"root filesystem and every capability dropped", sc)
	}
}

func checkResources(t *testing.T, c corev1.Container) {
	t.Helper()
	req, lim := c.Resources.Requests, c.Resources.Limits
	cpu, mem := req[corev1.ResourceCPU], req[corev1.ResourceMemory]
	memLimit := lim[corev1.ResourceMemory]
	if cpu.IsZero() || mem.IsZero() || memLimit.IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
		return
	}
	if mem.Cmp(memLimit) > 0 {
		t.Errorf("memory request %s exceeds its limit %s", mem.String(), memLimit.String())
	}
}

func checkEnv(t *testing.T, c corev1.Container, secretEnv []string, settings map[string]bool,
	m manifests) {
	t.Helper()
	fromConfigMap := false
	for _, e := range c.EnvFrom {
		if e.ConfigMapRef != nil && m.configMaps[e.ConfigMapRef.Name] != nil {
			fromConfigMap = true
		}
	}
	if !fromConfigMap {
		t.Errorf("envFrom %+v: want the ConfigMap rehook", c.EnvFrom)
	}

	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
		if !settings[e.Name] && e.Name != "REHOOK_ENCRYPTION_KEY" {
			t.Errorf("env sets %s, which rehook does not read", e.Name)
		}
		if e.Value != "" && (strings.Contains(e.Name, "URL") || strings.Contains(e.Name, "KEY")) {
			t.Errorf("env %s has a literal value: want it from the Secret", e.Name)
		}
	}
	for _, name := range secretEnv {
		e, ok := env[name]
		ref := e.ValueFrom
		if !ok || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "rehook" ||
			(ref.SecretKeyRef.Optional != nil && *ref.SecretKeyRef.Optional) {
			t.Errorf("env %s: want a required key of the Secret rehook, got %+v", name, e)
		}
	}
	if e, ok := env["REHOOK_ENCRYPTION_KEY"]; ok {
		ref := e.ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "rehook" {
			t.Errorf("env REHOOK_ENCRYPTION_KEY: want it from the Secret rehook, got %+v", e)
		}
	}
}

func checkProbes(t *testing.T, c corev1.Container, adminPort int32) {
	t.Helper()
	ports := map[string]int32{}
	for _, p := range c.Ports {
		for _, msg := range validation.IsValidPortName(p.Name) {
			t.Errorf("port name %q: %s", p.Name, msg)
		}
		ports[p.Name] = p.ContainerPort
	}
	if ports["admin"] != adminPort {
		t.Errorf("container port admin is %d, want %d, the port of REHOOK_ADMIN_ADDR",
			ports["admin"], adminPort)
	}

	probes := []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"startup", c.StartupProbe, "/healthz"},
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet of %s", p.kind, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || g.Port != intstr.FromString("admin") {
			t.Errorf("%s probe GET %s on port %s: want %s on the admin port",
				p.kind, g.Path, g.Port.String(), p.path)
		}
	}
}

// TestKubernetesSelectors checks that the Service and the disruption
// budgets select the pods they are for, and only those.
func TestKubernetesSelectors(t *testing.T) {
	m, _ := loadManifests(t)

	pods := map[string]labels.Set{}
	for name, d := range m.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("%s: selector %v: %v", name, d.Spec.Selector, err)
			continue
		}
		pods[name] = d.Spec.Template.Labels
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %s does not match its pods' labels %v",
				name, sel, d.Spec.Template.Labels)
		}
		for k, v := range d.Spec.Template.Labels {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("%s: label %s=%q: %v", name, k, v, errs)
			}
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("%s: replicas %v, want at least 2", name, d.Spec.Replicas)
		}
	}

	svc := m.services["rehook-api"]
	api := m.deployments["rehook-api"]
	if svc == nil || api == nil {
		t.Fatal("no Service or Deployment rehook-api")
	}
	selects := func(set map[string]string, pod labels.Set) bool {
		return len(set) > 0 && labels.SelectorFromSet(set).Matches(pod)
	}
	if !selects(svc.Spec.Selector, pods["rehook-api"]) ||
		selects(svc.Spec.Selector, pods["rehook-worker"]) {
		t.Errorf("Service rehook-api selector %v: want the api's pods alone", svc.Spec.Selector)
	}
	apiPorts := map[string]int32{}
	for _, p := range api.Spec.Template.Spec.Containers[0].Ports {
		apiPorts[p.Name] = p.ContainerPort
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := apiPorts[p.TargetPort.String()]; !ok {
			t.Errorf("Service port %s targets %s, which the api container does not name",
				p.Name, p.TargetPort.String())
		}
		if p.TargetPort.String() == "admin" {
			t.Errorf("Service exposes the admin port: it has no authentication")
		}
	}

	covered := map[string]int{}
	for name, pdb := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("PodDisruptionBudget %s: selector %v: %v", name, pdb.Spec.Selector, err)
			continue
		}
		var matched []string
		for d, podLabels := range pods {
			if sel.Matches(podLabels) {
				matched = append(matched, d)
				covered[d]++
			}
		}
		if len(matched) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v: want one Deployment's pods", name, matched)
			continue
		}
		replicas := int(*m.deployments[matched[0]].Spec.Replicas)
		s := pdb.Spec
		switch {
		case (s.MinAvailable == nil) == (s.MaxUnavailable == nil):
			t.Errorf("PodDisruptionBudget %s: want minAvailable or maxUnavailable", name)
		case s.MinAvailable != nil && s.MinAvailable.IntValue() >= replicas:
			t.Errorf("PodDisruptionBudget %s: minAvailable %s of %d replicas blocks every "+
				"drain", name, s.MinAvailable.String(), replicas)
		case s.MaxUnavailable != nil && s.MaxUnavailable.IntValue() < 1:
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %s blocks every drain",
				name, s.MaxUnavailable.String())
		}
	}
	for d := range pods {
		if covered[d] != 1 {
			t.Errorf("Deployment %s: covered by %d PodDisruptionBudgets, want 1", d, covered[d])
		}
	}
}
