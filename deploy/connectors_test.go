package deploy

import (
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluicehq/sluice/pipeline"
)

// The connectors fill the streams the consumers read: the pollers
// (salesforce, hubspot, greenhouse, lever) and the webhooks receiver, each an
// overlay in k8s/connectors/overlays on k8s/connectors/base-poller or
// base-webhooks (both built on the consumers' k8s/base). These tests render
// them like the consumers' (render, checkPod in deploy_test.go) and check
// what a connector needs on top.

// pollerSource is what the manifests must agree with in a polling source's
// section (salesforce, hubspot, greenhouse, lever).
type pollerSource struct {
	Checkpoint struct {
		Key  string `yaml:"key"`
		File *struct {
			Path string `yaml:"path"`
		} `yaml:"file"`
		MongoDB *struct {
			URI      string `yaml:"uri"`
			Database string `yaml:"database"`
		} `yaml:"mongodb"`
	} `yaml:"checkpoint"`
}

// webhooksSource is what the manifests must agree with in the webhooks
// source's section.
type webhooksSource struct {
	Listen       string             `yaml:"listen"`
	PathPrefix   *string            `yaml:"path_prefix"`
	MaxBodyBytes *pipeline.ByteSize `yaml:"max_body_bytes"`
	AckTimeout   *pipeline.Duration `yaml:"ack_timeout"`
	Mailgun      *struct {
		ReplayStore *struct {
			Redis *struct {
				Addr string `yaml:"addr"`
			} `yaml:"redis"`
		} `yaml:"replay_store"`
	} `yaml:"mailgun"`
}

// The webhooks source's defaults (sources/webhooks/config.go).
const (
	defaultPathPrefix   = "/webhooks"
	defaultMaxBodyBytes = 1 << 20
	defaultAckTimeout   = 10 * time.Second
)

// wantConnectors are the overlays k8s/connectors/overlays must hold: one per
// example connector.
var wantConnectors = []string{"ats-greenhouse", "ats-lever", "crm-hubspot", "crm-salesforce", "email-webhooks"}

func connectorDirs(t *testing.T) []string {
	t.Helper()
	out := kustomizeDirs(t, filepath.Join("k8s", "connectors", "overlays", "*"))
	var names []string
	for _, d := range out {
		names = append(names, filepath.Base(d))
	}
	for _, w := range wantConnectors {
		if !slices.Contains(names, w) {
			t.Fatalf("want a connector overlay k8s/connectors/overlays/%s, found %v", w, names)
		}
	}
	return out
}

var (
	connectorOnce    sync.Once
	connectorRenders []*rendered
)

// renderConnectors renders the connector overlays.
func renderConnectors(t *testing.T) []*rendered {
	t.Helper()
	connectorOnce.Do(func() {
		for _, d := range connectorDirs(t) {
			connectorRenders = append(connectorRenders, render(t, d))
		}
	})
	if connectorRenders == nil {
		t.Fatal("rendering the connectors failed")
	}
	return connectorRenders
}

// pollerOf is the polling source of p: its section and vendor, or nil.
func pollerOf(p pipelineFile) (*pollerSource, string) {
	var found *pollerSource
	var vendor string
	n := 0
	for name, s := range map[string]*pollerSource{"salesforce": p.Source.Salesforce, "hubspot": p.Source.HubSpot, "greenhouse": p.Source.Greenhouse, "lever": p.Source.Lever} {
		if s != nil {
			found, vendor = s, name
			n++
		}
	}
	if n != 1 {
		return nil, ""
	}
	return found, vendor
}

// TestConnectorsRender checks each connector overlay: the pod as for a
// consumer (checkPod), then what pollers and the webhooks receiver each need.
func TestConnectorsRender(t *testing.T) {
	consumers := renderAll(t)
	base := consumers[0].deployments[0].Spec.Template.Spec
	// The topic each consumer reads, and its stream label.
	streamOfTopic := map[string]string{}
	for _, r := range consumers {
		p, _, _ := loadPipeline(t, r)
		if p.Source.Kafka != nil {
			streamOfTopic[p.Source.Kafka.Topic] = r.deployments[0].Spec.Template.Labels["sluice.dev/stream"]
		}
	}
	checkpointKeys := map[string]string{}

	for _, r := range renderConnectors(t) {
		t.Run(filepath.Base(r.dir), func(t *testing.T) {
			d := r.deployments[0]
			spec := d.Spec.Template.Spec
			pd := checkPod(t, r)
			p := pd.pipeline

			// The base's security context, pod and container.
			if !reflect.DeepEqual(spec.SecurityContext, base.SecurityContext) {
				t.Errorf("pod securityContext %+v differs from the base's %+v", spec.SecurityContext, base.SecurityContext)
			}
			if !reflect.DeepEqual(spec.Containers[0].SecurityContext, base.Containers[0].SecurityContext) {
				t.Errorf("container securityContext %+v differs from the base's %+v", spec.Containers[0].SecurityContext, base.Containers[0].SecurityContext)
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Errorf("automountServiceAccountToken: want false, as the base (sluice never calls the Kubernetes API)")
			}

			// Selectors pick this connector's pods only: its stream and connector.
			for what, s := range podSelectors(t, r) {
				if s.Empty() || !s.Matches(pd.labels) {
					t.Errorf("%s selects %q, which does not match the pod labels %v", what, s.String(), pd.labels)
				}
				for _, l := range []string{"sluice.dev/stream", "sluice.dev/connector"} {
					if _, ok := s.RequiresExactMatch(l); !ok {
						t.Errorf("%s selects %q without %s: it would catch other pods of the namespace", what, s.String(), l)
					}
				}
			}

			// Into Kafka, acked by all in-sync replicas, into a topic a consumer
			// reads, under that consumer's stream label.
			if len(p.Sinks) == 0 {
				t.Fatalf("the pipeline has no sinks")
			}
			for i, s := range p.Sinks {
				if s.Kafka == nil {
					t.Errorf("sinks[%d]: want a kafka sink (the streams are Kafka topics)", i)
					continue
				}
				if s.Kafka.RequiredAcks != "all" {
					t.Errorf("sinks[%d].kafka.required_acks is %q: want all, written explicitly (a cursor or a 200 must not get ahead of what the brokers keep)", i, s.Kafka.RequiredAcks)
				}
				stream, ok := streamOfTopic[s.Kafka.Topic]
				if !ok {
					t.Errorf("sinks[%d].kafka.topic %s is read by no consumer overlay in k8s/overlays", i, s.Kafka.Topic)
				} else if pd.labels["sluice.dev/stream"] != stream {
					t.Errorf("writes %s, the %s stream's topic, but is labelled sluice.dev/stream=%s", s.Kafka.Topic, stream, pd.labels["sluice.dev/stream"])
				}
			}

			if len(r.scaledObjects) != 0 || len(r.triggerAuths) != 0 {
				t.Errorf("%d ScaledObjects and %d TriggerAuthentications: a connector has no consumer lag for KEDA", len(r.scaledObjects), len(r.triggerAuths))
			}
			checkMetricsService(t, r, pd.metricsPort)

			poller, vendor := pollerOf(p)
			switch {
			case poller != nil && p.Source.Webhooks == nil:
				checkPoller(t, r, poller)
				key := poller.Checkpoint.Key
				if key == "" {
					key = p.Name // checkpoint.key's default
				}
				if other, ok := checkpointKeys[key]; ok {
					t.Errorf("checkpoint.key %q is also %s's: two pollers on one cursor race its checkpoint", key, other)
				}
				checkpointKeys[key] = r.dir
				if got := pd.labels["sluice.dev/connector"]; got != vendor {
					t.Errorf("label sluice.dev/connector=%s, want the source, %s", got, vendor)
				}
			case p.Source.Webhooks != nil && poller == nil:
				checkWebhooks(t, r, pd)
			default:
				t.Fatalf("the pipeline's source is neither one poller (salesforce, hubspot, greenhouse, lever) nor webhooks")
			}
		})
	}
}

// checkMetricsService: Prometheus scrapes the metrics port through a Service
// its ServiceMonitor selects, and the ServiceMonitor selects no other
// Service of the overlay (such as the webhooks one).
func checkMetricsService(t *testing.T, r *rendered, metricsPort *corev1.ContainerPort) {
	t.Helper()
	if len(r.serviceMonitors) != 1 {
		t.Fatalf("want one ServiceMonitor, got %d", len(r.serviceMonitors))
	}
	sm := r.serviceMonitors[0]
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Fatalf("ServiceMonitor %s: want one endpoint with path /metrics, got %+v", sm.Name, sm.Spec.Endpoints)
	}
	sms := selectorOf(t, &sm.Spec.Selector)
	scraped := 0
	for _, svc := range r.services {
		servesMetrics := false
		for _, sp := range svc.Spec.Ports {
			if sp.Name == sm.Spec.Endpoints[0].Port && portMatches(sp.TargetPort, metricsPort) {
				servesMetrics = true
			}
		}
		switch selected := sms.Matches(labels.Set(svc.Labels)); {
		case selected && servesMetrics:
			scraped++
		case selected:
			t.Errorf("ServiceMonitor %s selects Service %s, which has no port %q on the metrics port", sm.Name, svc.Name, sm.Spec.Endpoints[0].Port)
		case servesMetrics:
			t.Errorf("Service %s serves the metrics port, but ServiceMonitor %s (%q) does not select it", svc.Name, sm.Name, sms.String())
		}
	}
	if scraped != 1 {
		t.Errorf("ServiceMonitor %s: want it to select the one metrics Service, it selects %d", sm.Name, scraped)
	}
}

// disruptionsAllowed is how many of n ready pods the budget lets a drain
// evict at once (Kubernetes rounds percentages up for both fields).
func disruptionsAllowed(t *testing.T, pdb *policyv1.PodDisruptionBudget, n int) int {
	t.Helper()
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		u, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, n, true)
		if err != nil {
			t.Fatalf("PodDisruptionBudget %s: maxUnavailable: %v", pdb.Name, err)
		}
		return min(u, n)
	case pdb.Spec.MinAvailable != nil:
		m, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, n, true)
		if err != nil {
			t.Fatalf("PodDisruptionBudget %s: minAvailable: %v", pdb.Name, err)
		}
		return max(n-m, 0)
	}
	return n
}

// checkPoller: one pod per cursor, always. replicas 1, Recreate, nothing that
// scales it, the cursors in MongoDB, and a budget that lets a drain evict the
// one pod.
func checkPoller(t *testing.T, r *rendered, src *pollerSource) {
	t.Helper()
	d := r.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment %s: replicas %s, want 1: two pollers on one cursor double the API usage and race the checkpoint", d.Name, replicasString(d))
	}
	if st := d.Spec.Strategy; st.Type != appsv1.RecreateDeploymentStrategyType || st.RollingUpdate != nil {
		t.Errorf("Deployment %s: strategy %+v, want type Recreate and no rollingUpdate: a rolling update runs the old and new poller at once", d.Name, st)
	}
	if len(r.hpas) != 0 {
		t.Errorf("%d HorizontalPodAutoscalers: a poller must not be scaled", len(r.hpas))
	}
	if len(r.ingresses) != 0 {
		t.Errorf("%d Ingresses: a poller takes no traffic", len(r.ingresses))
	}
	if len(r.services) != 1 {
		t.Errorf("want one Service (metrics), got %d", len(r.services))
	}
	cp := src.Checkpoint
	if cp.MongoDB == nil || cp.File != nil {
		t.Errorf("checkpoint: want mongodb and no file: a file in the pod is lost with the pod, and the poller starts over")
	} else if cp.MongoDB.URI == "" || cp.MongoDB.Database == "" {
		t.Errorf("checkpoint.mongodb: want uri and database")
	}
	// No budget is fine; a budget must not hold a drain: with one replica it
	// must allow one eviction (then the desired healthy count is 0, and a pod
	// that is not ready can go as well).
	for _, pdb := range r.pdbs {
		if disruptionsAllowed(t, pdb, 1) < 1 {
			t.Errorf("PodDisruptionBudget %s allows no eviction of the one poller pod: node drains would block forever", pdb.Name)
		}
	}
}

// checkWebhooks: several replicas behind a Service on the webhook port, a
// budget keeping one up, the Mailgun token store shared, an Ingress that
// reaches the webhook routes with TLS and the body limit of the pipeline.
func checkWebhooks(t *testing.T, r *rendered, pd pod) {
	t.Helper()
	d := r.deployments[0]
	c := d.Spec.Template.Spec.Containers[0]
	w := pd.pipeline.Source.Webhooks

	// Replicas: an HPA (and then no replicas field) or a fixed count, ≥ 2.
	minR, maxR := int32(0), int32(0)
	switch len(r.hpas) {
	case 0:
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("Deployment %s: replicas %s and no HPA: want at least 2, so one replica can fail or be drained", d.Name, replicasString(d))
		} else {
			minR, maxR = *d.Spec.Replicas, *d.Spec.Replicas
		}
	case 1:
		h := r.hpas[0]
		ref := h.Spec.ScaleTargetRef
		if ref.Name != d.Name || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			t.Errorf("HorizontalPodAutoscaler %s targets %s %s %s, want the Deployment %s", h.Name, ref.APIVersion, ref.Kind, ref.Name, d.Name)
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas: the HPA owns the count, and every apply would reset it", d.Name)
		}
		minR, maxR = ptrOr(h.Spec.MinReplicas, 1), h.Spec.MaxReplicas
		if minR < 2 || maxR < minR {
			t.Errorf("HorizontalPodAutoscaler %s: want 2 ≤ minReplicas ≤ maxReplicas, got %d and %d", h.Name, minR, maxR)
		}
		if len(h.Spec.Metrics) == 0 {
			t.Errorf("HorizontalPodAutoscaler %s has no metrics", h.Name)
		}
		for _, m := range h.Spec.Metrics {
			if m.Resource != nil && m.Resource.Target.Type == "Utilization" {
				if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
					t.Errorf("HorizontalPodAutoscaler %s scales on %s utilization, which the container does not request", h.Name, m.Resource.Name)
				}
			}
		}
	default:
		t.Errorf("%d HorizontalPodAutoscalers, want at most one", len(r.hpas))
	}

	// Several replicas share the Mailgun tokens, or a captured signature can
	// be replayed to a replica that has not seen it.
	if maxR > 1 && w.Mailgun != nil {
		if w.Mailgun.ReplayStore == nil || w.Mailgun.ReplayStore.Redis == nil || w.Mailgun.ReplayStore.Redis.Addr == "" {
			t.Errorf("up to %d replicas take Mailgun requests, but source.webhooks.mailgun has no replay_store.redis: each replica would keep its own tokens (docs/webhooks.md)", maxR)
		}
	}

	// The budget keeps one replica and lets a drain evict one.
	if len(r.pdbs) != 1 {
		t.Errorf("want one PodDisruptionBudget, got %d", len(r.pdbs))
	} else if minR >= 2 {
		if a := disruptionsAllowed(t, r.pdbs[0], int(minR)); a < 1 || a > int(minR)-1 {
			t.Errorf("PodDisruptionBudget %s allows %d evictions of %d replicas: want at least 1, and at least one replica left", r.pdbs[0].Name, a, minR)
		}
	}

	// The webhook port: the container declares it, a Service sends ready
	// pods' traffic to it, apart from metrics.
	host, port, err := net.SplitHostPort(w.Listen)
	if err != nil {
		t.Fatalf("source.webhooks.listen %q: %v", w.Listen, err)
	}
	if host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("source.webhooks.listen %q: the Service reaches the pod from outside; listen on 0.0.0.0", w.Listen)
	}
	hookPort := containerPort(c, port)
	if hookPort == nil || hookPort.Name == "" {
		t.Fatalf("container declares no named port for source.webhooks.listen %s", w.Listen)
	}
	if hookPort.ContainerPort == pd.metricsPort.ContainerPort {
		t.Fatalf("source.webhooks.listen and metrics.listen share port %d", hookPort.ContainerPort)
	}
	hookServices := map[string]*corev1.Service{}
	for _, svc := range r.services {
		targets := false
		for _, sp := range svc.Spec.Ports {
			switch {
			case portMatches(sp.TargetPort, hookPort):
				targets = true
			case portMatches(sp.TargetPort, pd.metricsPort) && svc.Spec.ClusterIP != corev1.ClusterIPNone:
				t.Errorf("Service %s exposes the metrics port %s through a cluster IP: keep metrics off the webhooks' path", svc.Name, pd.metricsPort.Name)
			}
		}
		if !targets {
			continue
		}
		hookServices[svc.Name] = svc
		if svc.Spec.PublishNotReadyAddresses {
			t.Errorf("Service %s publishes pods that are not ready: a replica failing /readyz would still get webhooks", svc.Name)
		}
		for _, sp := range svc.Spec.Ports {
			if portMatches(sp.TargetPort, pd.metricsPort) {
				t.Errorf("Service %s: port %s targets metrics; the webhooks Service carries the webhook port only", svc.Name, sp.Name)
			}
		}
	}
	if len(hookServices) == 0 {
		t.Fatalf("no Service targets the webhook port %s (%d)", hookPort.Name, hookPort.ContainerPort)
	}

	// The Ingress: each backend a port of a webhooks Service, the webhook
	// routes under its paths, TLS for every host, the body limit and timeout
	// of the pipeline.
	if len(r.ingresses) == 0 {
		t.Errorf("no Ingress: the overlay ships one as an example (with TLS and the body limit)")
	}
	prefix := defaultPathPrefix
	if w.PathPrefix != nil {
		prefix = *w.PathPrefix
	}
	maxBody := int64(defaultMaxBodyBytes)
	if w.MaxBodyBytes != nil {
		maxBody = int64(*w.MaxBodyBytes)
	}
	ackTimeout := defaultAckTimeout
	if w.AckTimeout != nil {
		ackTimeout = w.AckTimeout.D()
	}
	for _, ing := range r.ingresses {
		tlsHosts := map[string]bool{}
		for _, tls := range ing.Spec.TLS {
			if tls.SecretName == "" {
				t.Errorf("Ingress %s: a tls entry without secretName", ing.Name)
			}
			for _, h := range tls.Hosts {
				tlsHosts[h] = true
			}
		}
		if len(ing.Spec.Rules) == 0 {
			t.Errorf("Ingress %s has no rules", ing.Name)
		}
		for _, rule := range ing.Spec.Rules {
			if !tlsHosts[rule.Host] {
				t.Errorf("Ingress %s: host %q has no TLS: the providers post signed requests, which must not be readable on the way", ing.Name, rule.Host)
			}
			if rule.HTTP == nil {
				t.Errorf("Ingress %s: host %q has no paths", ing.Name, rule.Host)
				continue
			}
			for _, ip := range rule.HTTP.Paths {
				if ip.PathType == nil || *ip.PathType != "Prefix" || !strings.HasPrefix(prefix+"/", strings.TrimSuffix(ip.Path, "/")+"/") {
					t.Errorf("Ingress %s: path %s (%v) does not lead to the webhook routes under %s (want pathType Prefix)", ing.Name, ip.Path, ip.PathType, prefix)
				}
				b := ip.Backend.Service
				if b == nil {
					t.Errorf("Ingress %s: path %s has no service backend", ing.Name, ip.Path)
					continue
				}
				svc, ok := hookServices[b.Name]
				if !ok {
					t.Errorf("Ingress %s: backend Service %s is not a rendered Service on the webhook port", ing.Name, b.Name)
					continue
				}
				found := false
				for _, sp := range svc.Spec.Ports {
					if (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Name == "" && sp.Port == b.Port.Number) {
						found = portMatches(sp.TargetPort, hookPort)
					}
				}
				if !found {
					t.Errorf("Ingress %s: backend port %+v of Service %s does not lead to the webhook port", ing.Name, b.Port, b.Name)
				}
			}
		}
		isNginx := ing.Spec.IngressClassName != nil && strings.Contains(*ing.Spec.IngressClassName, "nginx")
		for k := range ing.Annotations {
			isNginx = isNginx || strings.HasPrefix(k, "nginx.ingress.kubernetes.io/")
		}
		if !isNginx {
			continue
		}
		if v, ok := ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"]; !ok {
			t.Errorf("Ingress %s: no nginx.ingress.kubernetes.io/proxy-body-size; nginx's default (1m) may differ from max_body_bytes %d", ing.Name, maxBody)
		} else if n, ok := nginxSize(v); !ok || n != maxBody {
			t.Errorf("Ingress %s: proxy-body-size %q is not source.webhooks.max_body_bytes (%d bytes)", ing.Name, v, maxBody)
		}
		if v, ok := ing.Annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]; ok {
			if s, err := strconv.Atoi(v); err != nil || time.Duration(s)*time.Second <= ackTimeout {
				t.Errorf("Ingress %s: proxy-read-timeout %q must be more seconds than ack_timeout %s, or nginx answers 504 while the request waits for Kafka", ing.Name, v, ackTimeout)
			}
		}
	}
}

// replicasString is the Deployment's replicas field as written.
func replicasString(d *appsv1.Deployment) string {
	if d.Spec.Replicas == nil {
		return "unset"
	}
	return strconv.Itoa(int(*d.Spec.Replicas))
}

var nginxSizeRE = regexp.MustCompile(`^([0-9]+)([kKmMgG]?)$`)

// nginxSize parses an nginx size ("1m" = 1 MiB, "512k", "1048576").
func nginxSize(s string) (int64, bool) {
	m := nginxSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	switch strings.ToLower(m[2]) {
	case "k":
		n <<= 10
	case "m":
		n <<= 20
	case "g":
		n <<= 30
	}
	return n, true
}

func TestNginxSize(t *testing.T) {
	for in, want := range map[string]int64{"1m": 1 << 20, "1M": 1 << 20, "512k": 512 << 10, "1048576": 1 << 20, "2g": 2 << 30} {
		if got, ok := nginxSize(in); !ok || got != want {
			t.Errorf("nginxSize(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "1mb", "1.5m", "m"} {
		if _, ok := nginxSize(bad); ok {
			t.Errorf("nginxSize(%q) accepted", bad)
		}
	}
}
