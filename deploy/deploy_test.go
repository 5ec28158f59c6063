package deploy

import (
	stdjson "encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The CRDs we use are not worth their Go modules (KEDA's pulls in
// controller-runtime and the whole KEDA tree): these structs hold exactly the
// fields the manifests may use, with the upstream JSON names, and are decoded
// as strictly as the typed Kubernetes objects. A field not listed here fails
// the test: add it here after checking it exists upstream.

// serviceMonitor is monitoring.coreos.com/v1 ServiceMonitor (Prometheus Operator).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool   `json:"honorLabels,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// scaledObject is keda.sh/v1alpha1 ScaledObject.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion             string `json:"apiVersion,omitempty"`
			Kind                   string `json:"kind,omitempty"`
			Name                   string `json:"name"`
			EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
		} `json:"scaleTargetRef"`
		PollingInterval  *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod   *int32 `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount *int32 `json:"idleReplicaCount,omitempty"`
		MinReplicaCount  *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount  *int32 `json:"maxReplicaCount,omitempty"`
		Advanced         *struct {
			RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
			MetricType        string            `json:"metricType,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

// triggerAuthentication is keda.sh/v1alpha1 TriggerAuthentication.
type triggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef,omitempty"`
	} `json:"spec"`
}

// kafkaScalerKeys are the metadata keys of KEDA's kafka scaler
// (keda.sh/docs/latest/scalers/apache-kafka). A misspelt key would otherwise
// be ignored by KEDA and silently fall back to a default.
var kafkaScalerKeys = []string{
	"bootstrapServers", "bootstrapServersFromEnv", "consumerGroup", "consumerGroupFromEnv",
	"topic", "topicFromEnv", "lagThreshold", "activationLagThreshold", "offsetResetPolicy",
	"allowIdleConsumers", "scaleToZeroOnInvalidOffset", "excludePersistentLag",
	"limitToPartitionsWithLag", "version", "partitionLimitation", "sasl", "tls", "unsafeSsl",
}

// pipelineFile is the part of a pipeline file the manifests must agree with.
// The whole file is checked by `sluice validate` (TestOverlayPipelinesValidate).
type pipelineFile struct {
	Name   string `yaml:"name"`
	Source struct {
		Kafka *struct {
			Topic string `yaml:"topic"`
			Group string `yaml:"group"`
			Start string `yaml:"start"`
		} `yaml:"kafka"`
		// The connectors' sources (connectors_test.go).
		Webhooks   *webhooksSource `yaml:"webhooks"`
		Salesforce *pollerSource   `yaml:"salesforce"`
		HubSpot    *pollerSource   `yaml:"hubspot"`
		Greenhouse *pollerSource   `yaml:"greenhouse"`
		Lever      *pollerSource   `yaml:"lever"`
	} `yaml:"source"`
	Sinks []struct {
		Kafka *struct {
			Topic        string `yaml:"topic"`
			RequiredAcks string `yaml:"required_acks"`
		} `yaml:"kafka"`
	} `yaml:"sinks"`
	Delivery struct {
		ShutdownTimeout string `yaml:"shutdown_timeout"`
	} `yaml:"delivery"`
	Metrics struct {
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`
}

// rendered is one overlay after kustomize build, decoded into typed objects.
type rendered struct {
	dir             string
	deployments     []*appsv1.Deployment
	configMaps      map[string]*corev1.ConfigMap
	services        []*corev1.Service
	serviceAccounts map[string]*corev1.ServiceAccount
	pdbs            []*policyv1.PodDisruptionBudget
	serviceMonitors []*serviceMonitor
	scaledObjects   []*scaledObject
	triggerAuths    map[string]*triggerAuthentication
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	ingresses       []*networkingv1.Ingress
}

// kustomizeDirs lists the directories matching pattern that hold a
// kustomization.yaml.
func kustomizeDirs(t *testing.T, pattern string) []string {
	t.Helper()
	dirs, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "kustomization.yaml")); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// overlayDirs are the consumers' overlays, one per stream (k8s/overlays/*).
// The connectors that fill the streams have theirs in
// k8s/connectors/overlays (connectorDirs, connectors_test.go).
func overlayDirs(t *testing.T) []string {
	t.Helper()
	out := kustomizeDirs(t, filepath.Join("k8s", "overlays", "*"))
	if len(out) < 3 {
		t.Fatalf("want an overlay per example stream (crm, ats, email) in k8s/overlays, found %v", out)
	}
	return out
}

// render runs kustomize (the library kubectl uses) on dir and decodes every
// object strictly: unknown or misspelt fields, wrong types and duplicate keys
// fail, as the API server's strict field validation would.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	r := &rendered{dir: dir, configMaps: map[string]*corev1.ConfigMap{},
		serviceAccounts: map[string]*corev1.ServiceAccount{}, triggerAuths: map[string]*triggerAuthentication{}}
	for _, res := range m.Resources() {
		b, err := res.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %s %s: %v", dir, res.GetKind(), res.GetName(), err)
		}
		gvk := res.GetApiVersion() + " " + res.GetKind()
		var obj any
		switch gvk {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			r.deployments, obj = append(r.deployments, d), d
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			r.configMaps[res.GetName()], obj = c, c
		case "v1 Service":
			s := &corev1.Service{}
			r.services, obj = append(r.services, s), s
		case "v1 ServiceAccount":
			s := &corev1.ServiceAccount{}
			r.serviceAccounts[res.GetName()], obj = s, s
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			r.pdbs, obj = append(r.pdbs, p), p
		case "monitoring.coreos.com/v1 ServiceMonitor":
			s := &serviceMonitor{}
			r.serviceMonitors, obj = append(r.serviceMonitors, s), s
		case "keda.sh/v1alpha1 ScaledObject":
			s := &scaledObject{}
			r.scaledObjects, obj = append(r.scaledObjects, s), s
		case "keda.sh/v1alpha1 TriggerAuthentication":
			a := &triggerAuthentication{}
			r.triggerAuths[res.GetName()], obj = a, a
		case "autoscaling/v2 HorizontalPodAutoscaler":
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			r.hpas, obj = append(r.hpas, h), h
		case "networking.k8s.io/v1 Ingress":
			i := &networkingv1.Ingress{}
			r.ingresses, obj = append(r.ingresses, i), i
		default:
			t.Fatalf("%s: %s %s: no typed decoding for this kind; add it to render()", dir, gvk, res.GetName())
		}
		strict, err := json.UnmarshalStrict(b, obj, json.DisallowUnknownFields)
		if err != nil {
			t.Fatalf("%s: %s %s: %v", dir, gvk, res.GetName(), err)
		}
		for _, e := range strict {
			t.Errorf("%s: %s %s: %v", dir, gvk, res.GetName(), e)
		}
	}
	if len(r.deployments) != 1 {
		t.Fatalf("%s: want one Deployment, got %d", dir, len(r.deployments))
	}
	return r
}

var (
	renderOnce sync.Once
	renders    []*rendered
)

// renderAll renders the consumer overlays.
func renderAll(t *testing.T) []*rendered {
	t.Helper()
	renderOnce.Do(func() {
		for _, d := range overlayDirs(t) {
			r := render(t, d)
			if len(r.services) != 1 || len(r.pdbs) != 1 || len(r.serviceMonitors) != 1 || len(r.scaledObjects) != 1 || len(r.hpas) != 0 || len(r.ingresses) != 0 {
				t.Fatalf("%s: want one Service, PodDisruptionBudget, ServiceMonitor and ScaledObject, no HorizontalPodAutoscaler (KEDA makes it) or Ingress; got %d, %d, %d, %d, %d, %d",
					d, len(r.services), len(r.pdbs), len(r.serviceMonitors), len(r.scaledObjects), len(r.hpas), len(r.ingresses))
			}
			renders = append(renders, r)
		}
	})
	if renders == nil {
		t.Fatal("rendering failed")
	}
	return renders
}

// pipelineOf finds the file `sluice run -c FILE` reads in the container: the
// -c argument, the volume mounted at its directory, the ConfigMap behind it
// and the key named like the file.
func pipelineOf(t *testing.T, r *rendered) (name, text string) {
	t.Helper()
	d := r.deployments[0]
	c := d.Spec.Template.Spec.Containers[0]
	args := append(slices.Clone(c.Command), c.Args...)
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("%s: container %s runs %q, want `run -c FILE`", r.dir, c.Name, args)
	}
	i := slices.Index(args, "-c")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("%s: container %s args %q have no -c FILE", r.dir, c.Name, args)
	}
	file := args[i+1]
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(file) {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.ConfigMap == nil {
				t.Fatalf("%s: volume %s at %s is not a ConfigMap", r.dir, v.Name, m.MountPath)
			}
			cm, ok := r.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("%s: volume %s names ConfigMap %s, which the overlay does not render", r.dir, v.Name, v.ConfigMap.Name)
			}
			text, ok := cm.Data[path.Base(file)]
			if !ok {
				t.Fatalf("%s: ConfigMap %s has no key %s (the file -c %s reads)", r.dir, cm.Name, path.Base(file), file)
			}
			return cm.Name, text
		}
	}
	t.Fatalf("%s: nothing is mounted at %s, the directory of -c %s", r.dir, path.Dir(file), file)
	return "", ""
}

func parsePipeline(t *testing.T, r *rendered, text string) pipelineFile {
	t.Helper()
	var p pipelineFile
	if err := yaml.Unmarshal([]byte(text), &p); err != nil {
		t.Fatalf("%s: pipeline: %v", r.dir, err)
	}
	return p
}

// secretSamples are throwaway values for the Secret keys whose format
// `sluice validate` checks (the Makefile's EXAMPLE_SECRETS key: a P-256
// test key); any other Secret key gets a placeholder.
var secretSamples = map[string]string{
	"sluice-webhooks/sendgrid-public-key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEk4a7WLkJRDh9mTALI7YPuFZxU8xFIWNVoUn8KdxVkCLqja+bWgpbmCgp/Tm7S9/FA5+ju39X1RixNS5KsXrjZg==",
}

// containerEnv is the environment the container starts with, as far as the
// manifests say: literal values, ConfigMap values (env and envFrom), and a
// placeholder for each Secret key (whose value is not in the repository).
func containerEnv(t *testing.T, r *rendered) (env map[string]string, secrets map[string]string) {
	t.Helper()
	c := r.deployments[0].Spec.Template.Spec.Containers[0]
	env, secrets = map[string]string{}, map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := r.configMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("%s: envFrom ConfigMap %s is not rendered", r.dir, ef.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[ef.Prefix+k] = v
			}
		case ef.SecretRef != nil:
			t.Fatalf("%s: envFrom a whole Secret hides which variables exist; use env with secretKeyRef", r.dir)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			env[e.Name] = "placeholder-for-secret-" + ref.Name + "-" + ref.Key
			if v, ok := secretSamples[ref.Name+"/"+ref.Key]; ok {
				env[e.Name] = v
			}
			secrets[e.Name] = ref.Name + "/" + ref.Key
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, ok := r.configMaps[ref.Name]
			if !ok || cm.Data[ref.Key] == "" {
				t.Fatalf("%s: env %s: ConfigMap %s key %s is not rendered", r.dir, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = cm.Data[ref.Key]
		default:
			env[e.Name] = "placeholder-from-field"
		}
	}
	return env, secrets
}

// pod is what checkPod found out about an overlay's Deployment.
type pod struct {
	labels      labels.Set
	pipeline    pipelineFile // parsed with ${VAR} replaced from env
	metricsPort *corev1.ContainerPort
	env         map[string]string
}

// checkMemLimit: GOMEMLIMIT must be set, in Go's syntax, between half and
// 90% of the container's memory limit, so the GC holds the heap under the
// limit with room for the runtime's own memory.
func checkMemLimit(t *testing.T, c corev1.Container) {
	t.Helper()
	var v string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			v = e.Value
		}
	}
	if v == "" {
		t.Errorf("container env sets no GOMEMLIMIT: the heap may grow to twice the live data and past limits.memory")
		return
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	var bytes int64 = -1
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			if x, err := strconv.ParseInt(n, 10, 64); err == nil {
				bytes = x * u.mult
			}
			break
		}
	}
	if bytes < 0 {
		if x, err := strconv.ParseInt(v, 10, 64); err == nil {
			bytes = x
		}
	}
	limit := c.Resources.Limits.Memory().Value()
	switch {
	case bytes < 0:
		t.Errorf("GOMEMLIMIT %q is not in Go's syntax (e.g. 400MiB)", v)
	case limit > 0 && (bytes > limit*9/10 || bytes < limit/2):
		t.Errorf("GOMEMLIMIT %s is not between 50%% and 90%% of limits.memory %s", v, c.Resources.Limits.Memory())
	}
}

// checkPod checks what every sluice Deployment needs, consumer or connector:
// one container with a pinned image, its ServiceAccount, a non-root security
// context, resources, a grace period longer than delivery.shutdown_timeout,
// metrics.listen reachable from outside on a named port with /healthz and
// /readyz probes, and every ${VAR} of the pipeline in the container's env.
func checkPod(t *testing.T, r *rendered) pod {
	t.Helper()
	d := r.deployments[0]
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("Deployment %s: want one container, got %d", d.Name, len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image == "" || c.Image == "sluice" || !strings.Contains(c.Image, ":") {
		t.Errorf("container image %q: want a registry name and tag (kustomize images:)", c.Image)
	}
	if _, ok := r.serviceAccounts[spec.ServiceAccountName]; !ok {
		t.Errorf("serviceAccountName %q is not rendered", spec.ServiceAccountName)
	}
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("pod securityContext must run as a non-root user")
	}
	for _, rn := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[rn], c.Resources.Limits[rn]
		if req.IsZero() || lim.IsZero() {
			t.Errorf("resources: want a %s request and limit, got %v and %v", rn, req.String(), lim.String())
		} else if req.Cmp(lim) > 0 {
			t.Errorf("resources: %s request %s above its limit %s", rn, req.String(), lim.String())
		}
	}

	checkMemLimit(t, c)

	// The pipeline the container reads, and what the manifests must agree with.
	p, text, env := loadPipeline(t, r)
	// Every ${VAR} without a default must be in the container's env.
	for _, m := range envRef.FindAllStringSubmatch(stripComments(text), -1) {
		if _, ok := env[m[1]]; !ok && m[2] == "" {
			t.Errorf("the pipeline uses ${%s}, which the container's env does not set", m[1])
		}
	}
	shutdown := 30 * time.Second // delivery.shutdown_timeout's default
	if p.Delivery.ShutdownTimeout != "" {
		var err error
		if shutdown, err = time.ParseDuration(p.Delivery.ShutdownTimeout); err != nil {
			t.Fatalf("delivery.shutdown_timeout: %v", err)
		}
	}
	grace := time.Duration(ptrOr(spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if grace < shutdown+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %s must exceed delivery.shutdown_timeout %s by at least 10s (commit, save cursors, leave the group), or the kubelet kills in-flight work", grace, shutdown)
	}

	host, port, err := net.SplitHostPort(p.Metrics.Listen)
	if err != nil {
		t.Fatalf("metrics.listen %q: %v", p.Metrics.Listen, err)
	}
	if host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("metrics.listen %q: probes and Prometheus come from outside the pod; listen on 0.0.0.0", p.Metrics.Listen)
	}
	metricsPort := containerPort(c, port)
	if metricsPort == nil || metricsPort.Name == "" {
		t.Fatalf("container declares no named port for metrics.listen %s", p.Metrics.Listen)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet on %s", pr.name, pr.path)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path || !portMatches(g.Port, metricsPort) {
			t.Errorf("%s: GET %s on port %s, want %s on %s (%d)", pr.name, g.Path, g.Port.String(), pr.path, metricsPort.Name, metricsPort.ContainerPort)
		}
	}
	return pod{labels: labels.Set(d.Spec.Template.Labels), pipeline: p, metricsPort: metricsPort, env: env}
}

// loadPipeline is the pipeline r's container reads: parsed with ${VAR}
// replaced from the container's env, as written, and that env.
func loadPipeline(t *testing.T, r *rendered) (p pipelineFile, text string, env map[string]string) {
	t.Helper()
	_, text = pipelineOf(t, r)
	env, _ = containerEnv(t, r)
	return parsePipeline(t, r, expandEnv(text, env)), text, env
}

// containerPort is the port c declares with the number port ("9102"), or nil.
func containerPort(c corev1.Container, port string) *corev1.ContainerPort {
	n, err := strconv.Atoi(port)
	if err != nil {
		return nil
	}
	for i := range c.Ports {
		if int(c.Ports[i].ContainerPort) == n {
			return &c.Ports[i]
		}
	}
	return nil
}

// expandEnv replaces ${VAR} and ${VAR:-default} as the pipeline loader does;
// a variable env lacks (reported by checkPod) is left as written.
func expandEnv(text string, env map[string]string) string {
	return envRef.ReplaceAllStringFunc(text, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := env[m[1]]; ok && (v != "" || m[2] == "") {
			return v
		}
		if m[2] != "" {
			return strings.TrimPrefix(m[2], ":-")
		}
		return ref
	})
}

// selectorOf parses a Deployment's or PodDisruptionBudget's selector.
func selectorOf(t *testing.T, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// podSelectors are the selectors of an overlay that pick its pods.
func podSelectors(t *testing.T, r *rendered) map[string]labels.Selector {
	t.Helper()
	sel := map[string]labels.Selector{}
	d := r.deployments[0]
	sel["Deployment "+d.Name] = selectorOf(t, d.Spec.Selector)
	for _, svc := range r.services {
		sel["Service "+svc.Name] = labels.SelectorFromSet(svc.Spec.Selector)
	}
	for _, pdb := range r.pdbs {
		sel["PodDisruptionBudget "+pdb.Name] = selectorOf(t, pdb.Spec.Selector)
	}
	return sel
}

// TestOverlaysRender checks what the typed decoding cannot: that the objects
// of each stream's consumer refer to each other correctly.
func TestOverlaysRender(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(filepath.Base(r.dir), func(t *testing.T) {
			d := r.deployments[0]
			if d.Spec.Replicas != nil {
				t.Errorf("Deployment %s sets replicas: the ScaledObject's HPA owns the count, and every apply would reset it", d.Name)
			}
			pd := checkPod(t, r)
			p, env, metricsPort := pd.pipeline, pd.env, pd.metricsPort

			// Selectors: each must pick exactly this stream's pods.
			for what, s := range podSelectors(t, r) {
				if s.Empty() || !s.Matches(pd.labels) {
					t.Errorf("%s selects %q, which does not match the pod labels %v", what, s.String(), pd.labels)
				}
				if _, ok := s.RequiresExactMatch("sluice.dev/stream"); !ok {
					t.Errorf("%s selects %q without sluice.dev/stream: it would catch other streams' pods", what, s.String())
				}
			}
			svc := r.services[0]
			if len(svc.Spec.Ports) != 1 || !portMatches(svc.Spec.Ports[0].TargetPort, metricsPort) {
				t.Errorf("Service %s: want one port targeting the metrics port %s", svc.Name, metricsPort.Name)
			}

			sm := r.serviceMonitors[0]
			sms := selectorOf(t, &sm.Spec.Selector)
			if sms.Empty() || !sms.Matches(labels.Set(svc.Labels)) {
				t.Errorf("ServiceMonitor %s selects %q, which does not match Service %s labels %v", sm.Name, sms.String(), svc.Name, svc.Labels)
			}
			if _, ok := sms.RequiresExactMatch("sluice.dev/stream"); !ok {
				t.Errorf("ServiceMonitor %s selects %q without sluice.dev/stream", sm.Name, sms.String())
			}
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor %s: want one endpoint on port %q path /metrics, got %+v", sm.Name, svc.Spec.Ports[0].Name, sm.Spec.Endpoints)
			}

			checkScaledObject(t, r, p, env)
		})
	}
}

// allRenders is every overlay: the consumers' and the connectors'.
func allRenders(t *testing.T) []*rendered {
	t.Helper()
	return append(slices.Clone(renderAll(t)), renderConnectors(t)...)
}

// TestOverlaysDistinct: the consumers and connectors share a namespace, so no
// overlay's selectors may match another's pods (a Service would send traffic,
// a PodDisruptionBudget count pods, of the wrong Deployment), no
// ServiceMonitor another's Services (scraped twice), and no two pipelines
// share a name (the pipeline label of every metric and log line).
func TestOverlaysDistinct(t *testing.T) {
	all := allRenders(t)
	names := map[string]string{}
	for _, r := range all {
		p, _, _ := loadPipeline(t, r)
		if other, ok := names[p.Name]; ok {
			t.Errorf("%s and %s both run a pipeline named %q", other, r.dir, p.Name)
		}
		names[p.Name] = r.dir
		for _, other := range all {
			if other == r {
				continue
			}
			otherPod := labels.Set(other.deployments[0].Spec.Template.Labels)
			for what, s := range podSelectors(t, r) {
				if s.Matches(otherPod) {
					t.Errorf("%s: %s selects %q, which also matches the pods of %s", r.dir, what, s.String(), other.dir)
				}
			}
			for _, sm := range r.serviceMonitors {
				sms := selectorOf(t, &sm.Spec.Selector)
				for _, svc := range other.services {
					if svc.Namespace == sm.Namespace && sms.Matches(labels.Set(svc.Labels)) {
						t.Errorf("%s: ServiceMonitor %s also selects Service %s of %s", r.dir, sm.Name, svc.Name, other.dir)
					}
				}
			}
		}
	}
}

func checkScaledObject(t *testing.T, r *rendered, p pipelineFile, env map[string]string) {
	t.Helper()
	so := r.scaledObjects[0]
	d := r.deployments[0]
	ref := so.Spec.ScaleTargetRef
	if ref.Name != d.Name || (ref.Kind != "" && ref.Kind != "Deployment") || (ref.APIVersion != "" && ref.APIVersion != "apps/v1") {
		t.Errorf("ScaledObject %s targets %s %s %s, want the Deployment %s", so.Name, ref.APIVersion, ref.Kind, ref.Name, d.Name)
	}
	minR, maxR := ptrOr(so.Spec.MinReplicaCount, 0), ptrOr(so.Spec.MaxReplicaCount, 100)
	if so.Spec.MaxReplicaCount == nil || minR < 1 || maxR < minR {
		t.Errorf("ScaledObject %s: want 1 ≤ minReplicaCount ≤ maxReplicaCount (= the topic's partitions), got %d and %d", so.Name, minR, maxR)
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "kafka" {
		t.Fatalf("ScaledObject %s: want one kafka trigger", so.Name)
	}
	if p.Source.Kafka == nil {
		t.Fatalf("ScaledObject %s scales on Kafka lag, but the pipeline's source is not kafka", so.Name)
	}
	tr := so.Spec.Triggers[0]
	md := tr.Metadata
	for k := range md {
		if !slices.Contains(kafkaScalerKeys, k) {
			t.Errorf("ScaledObject %s: kafka trigger metadata %q is not a KEDA kafka scaler parameter", so.Name, k)
		}
	}
	start := p.Source.Kafka.Start
	if start == "" {
		start = "earliest" // the kafka source's default
	}
	for key, want := range map[string]string{"consumerGroup": p.Source.Kafka.Group, "topic": p.Source.Kafka.Topic, "offsetResetPolicy": start} {
		if md[key] != want {
			t.Errorf("ScaledObject %s: %s is %q but the pipeline's kafka source has %q", so.Name, key, md[key], want)
		}
	}
	if n, err := strconv.Atoi(md["lagThreshold"]); err != nil || n < 1 {
		t.Errorf("ScaledObject %s: lagThreshold %q: want a positive count of records per replica", so.Name, md["lagThreshold"])
	}
	if v := md["bootstrapServersFromEnv"]; v != "" {
		if _, ok := env[v]; !ok {
			t.Errorf("ScaledObject %s: bootstrapServersFromEnv %s is not in the Deployment's env", so.Name, v)
		}
	} else if md["bootstrapServers"] == "" {
		t.Errorf("ScaledObject %s: no bootstrapServers", so.Name)
	}
	if md["sasl"] != "" {
		if tr.AuthenticationRef == nil {
			t.Fatalf("ScaledObject %s: sasl without an authenticationRef", so.Name)
		}
		ta, ok := r.triggerAuths[tr.AuthenticationRef.Name]
		if !ok {
			t.Fatalf("ScaledObject %s: authenticationRef %s is not rendered", so.Name, tr.AuthenticationRef.Name)
		}
		var params []string
		for _, s := range ta.Spec.SecretTargetRef {
			params = append(params, s.Parameter)
		}
		sort.Strings(params)
		if !slices.Equal(params, []string{"password", "username"}) {
			t.Errorf("TriggerAuthentication %s: want username and password from the Secret, got %v", ta.Name, params)
		}
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// stripComments drops YAML comment lines: ${VAR} is replaced in values only.
func stripComments(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func portMatches(p intstr.IntOrString, cp *corev1.ContainerPort) bool {
	if p.Type == intstr.String {
		return p.StrVal == cp.Name
	}
	return p.IntVal == cp.ContainerPort
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// sluiceBinary builds cmd/sluice the way deploy/Dockerfile does.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-deploy-test")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "sluice")
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is needed to build sluice: %w", err)
			return
		}
		cmd := exec.Command(goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -X main.version=deploy-test", "-o", binary, "./cmd/sluice")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

// runValidate runs `sluice validate -c file` with exactly env (nothing from
// the test's own environment), as the container would see it.
func runValidate(t *testing.T, file string, env map[string]string) {
	t.Helper()
	cmd := exec.Command(sluiceBinary(t), "validate", "-c", file)
	cmd.Env = []string{}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("sluice validate %s: %v\n%s", file, err, out)
	}
}

// TestOverlayPipelinesValidate extracts the pipeline each Deployment runs from
// its rendered ConfigMap and runs the real `sluice validate` on it, with the
// container's environment (Secret values replaced by placeholders), for the
// consumers and the connectors. Every credential in it must be a ${VAR} the
// container takes from a Secret.
func TestOverlayPipelinesValidate(t *testing.T) {
	for _, r := range allRenders(t) {
		t.Run(filepath.Base(r.dir), func(t *testing.T) {
			cm, text := pipelineOf(t, r)
			file := filepath.Join(t.TempDir(), cm+".yaml")
			if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			env, secrets := containerEnv(t, r)
			if len(secrets) == 0 {
				t.Errorf("no credentials from a Secret: want them as env secretKeyRef, used as ${VAR}")
			}
			for name := range secrets {
				if !strings.Contains(stripComments(text), "${"+name+"}") {
					t.Errorf("env %s comes from a Secret but the pipeline does not use ${%s}", name, name)
				}
			}
			checkCredentials(t, text, secrets)
			runValidate(t, file, env)
		})
	}
}

// credentialKeys are the pipeline keys that hold a secret (mongodb.uri
// carries the user and password).
var credentialKeys = []string{"password", "client_secret", "private_key", "token", "api_key", "signing_key", "mongodb.uri"}

// wholeEnvRef is a value that is exactly one ${VAR}, without a default.
var wholeEnvRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// checkCredentials: every credential in the pipeline is exactly ${VAR}, and
// VAR comes from a Secret (secrets: env name → Secret/key). A literal or a
// ${VAR:-default} would put the secret, or a stand-in for it, in the
// repository.
func checkCredentials(t *testing.T, text string, secrets map[string]string) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node, parent, path string)
	walk = func(n *yaml.Node, parent, path string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, parent, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				p := strings.TrimPrefix(path+"."+k, ".")
				if v.Kind == yaml.ScalarNode && (slices.Contains(credentialKeys, k) || slices.Contains(credentialKeys, parent+"."+k)) {
					m := wholeEnvRef.FindStringSubmatch(v.Value)
					switch {
					case m == nil:
						t.Errorf("pipeline line %d: %s is %q: want exactly ${VAR}, VAR from a Secret", v.Line, p, v.Value)
					case secrets[m[1]] == "":
						t.Errorf("pipeline line %d: %s is ${%s}, which the container does not take from a Secret", v.Line, p, m[1])
					}
				}
				walk(v, k, p)
			}
		}
	}
	walk(&root, "", "")
}

// TestReplayJobs: every replay Job of docs/operations.md runs `sluice
// replay` on a pipeline file that validates (the consumer overlay it names
// in its configmap command), with the Kafka credentials from the Secret, and
// the flags it passes parse.
func TestReplayJobs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("replay", "*-job.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no replay Jobs in deploy/replay: %v", err)
	}
	fromFile := regexp.MustCompile(`--from-file=pipeline\.yaml=deploy/(\S+)`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var job batchv1.Job
		if _, err := json.UnmarshalStrict(mustJSON(t, data), &job, json.DisallowUnknownFields); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c := job.Spec.Template.Spec.Containers[0]
		if len(c.Args) < 3 || c.Args[0] != "replay" || c.Args[1] != "-c" || c.Args[2] != "/etc/sluice/pipeline.yaml" {
			t.Errorf("%s: args %q, want replay -c /etc/sluice/pipeline.yaml", f, c.Args)
		}
		if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: restartPolicy %q, want Never", f, job.Spec.Template.Spec.RestartPolicy)
		}
		m := fromFile.FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s: no `--from-file=pipeline.yaml=deploy/…` command naming the pipeline it replays through", f)
		}
		env := map[string]string{"KAFKA_BROKERS": "kafka:9093", "KAFKA_USERNAME": "u", "KAFKA_PASSWORD": "p"}
		runValidate(t, string(m[1]), env)
		// The flags parse: a dry run against a file that does not exist
		// fails on the file, not on the arguments.
		args := []string{"replay", "--from-file", filepath.Join(t.TempDir(), "none.jsonl"), "--dry-run"}
		for i := 3; i < len(c.Args); i++ {
			a := c.Args[i]
			for _, e := range c.Env {
				a = strings.ReplaceAll(a, "$("+e.Name+")", e.Value)
			}
			if a == "--dry-run=false" {
				continue
			}
			args = append(args, a)
		}
		out, err := exec.Command(sluiceBinary(t), args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "open dead-letter file") {
			t.Errorf("%s: sluice %q: %v\n%s", f, args, err, out)
		}
	}
}

// mustJSON converts one YAML document to JSON.
func mustJSON(t *testing.T, data []byte) []byte {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := stdjson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
