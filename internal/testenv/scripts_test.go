package testenv_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runLib runs a bash snippet with lib.sh and build.sh's helpers sourced.
func runLib(t *testing.T, env []string, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `set -euo pipefail; . ./lib.sh; . ./build.sh; `+script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestKafkaClusterIDNeverStartsWithDash draws many ids: about one in 64
// random ones starts with '-', which the storage tool reads as an option.
func TestKafkaClusterIDNeverStartsWithDash(t *testing.T) {
	out, err := runLib(t, nil, `for i in $(seq 1 640); do kafka_cluster_id; done`)
	if err != nil {
		t.Fatalf("kafka_cluster_id: %v\n%s", err, out)
	}
	ids := strings.Fields(out)
	if len(ids) != 640 {
		t.Fatalf("got %d ids, want 640", len(ids))
	}
	for _, id := range ids {
		if strings.HasPrefix(id, "-") || len(id) != 22 {
			t.Fatalf("cluster id %q: want 22 URL-safe base64 characters not starting with '-'", id)
		}
	}
}

// TestKafkaStorageFormatsLeadingDashClusterID reproduces a fresh-clone CI
// failure: the cluster id "-yw6-9gJHhpZ1LpE5ephhA" was passed as "-t ID" and
// the storage tool answered "argument --cluster-id/-t: expected one argument".
// It runs the real StorageTool from the Kafka jars make testenv installed.
func TestKafkaStorageFormatsLeadingDashClusterID(t *testing.T) {
	jarsDir, err := runLib(t, nil, `printf '%s' "$(kafka_dir)/jars"`)
	if err != nil {
		t.Fatalf("kafka_dir: %v\n%s", err, jarsDir)
	}
	if _, err := os.Stat(jarsDir); err != nil {
		if os.Getenv("SLUICE_TESTENV_REQUIRED") != "" && os.Getenv("SLUICE_TESTENV_KAFKA") != "kfake" {
			t.Fatalf("Kafka jars not installed at %s (run make testenv): %v", jarsDir, err)
		}
		t.Skipf("Kafka jars not installed at %s; run make testenv", jarsDir)
	}
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	logDir := filepath.Join(dir, "logs")
	if err := os.WriteFile(props, []byte(strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.voters=1@127.0.0.1:1",
		"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:1",
		"controller.listener.names=CONTROLLER",
		"log.dirs=" + logDir,
		"",
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	logfile := filepath.Join(dir, "format.log")
	const id = "-yw6-9gJHhpZ1LpE5ephhA"
	cmd := exec.Command("bash", "-c", `set -euo pipefail; . ./lib.sh; format_kafka_storage "$1/*" "$2" "$3" /dev/null "$4"`,
		"bash", jarsDir, id, props, logfile)
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(logfile)
		t.Fatalf("format with cluster id %q: %v\n%s\n%s", id, err, out, log)
	}
	meta, err := os.ReadFile(filepath.Join(logDir, "meta.properties"))
	if err != nil {
		t.Fatalf("no meta.properties after format: %v", err)
	}
	if !strings.Contains(string(meta), "cluster.id="+id) {
		t.Fatalf("meta.properties does not carry cluster.id=%s:\n%s", id, meta)
	}
}
