package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Runner's Prometheus metrics, all labelled by table (a
// dead-letter table is "<table>_dlq") except the per-partition lag.
type metrics struct {
	consumed      *prometheus.CounterVec
	rows          *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	files         *prometheus.CounterVec
	commits       *prometheus.CounterVec
	conflicts     *prometheus.CounterVec
	retries       *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	resets        *prometheus.CounterVec
	commitLatency *prometheus.HistogramVec
	buffered      *prometheus.GaugeVec
	version       *prometheus.GaugeVec
	lastCommit    *prometheus.GaugeVec
	lag           *prometheus.GaugeVec
	paused        *prometheus.GaugeVec

	registryRejects *prometheus.CounterVec
	registryWaiting *prometheus.GaugeVec

	uploading      *prometheus.GaugeVec
	uploadFailures *prometheus.CounterVec
	storageErrors  *prometheus.CounterVec
	slowRequests   *prometheus.CounterVec
	fetchErrors    *prometheus.CounterVec
	fetchBytes     prometheus.Gauge
	expired        *prometheus.CounterVec
	ready          prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, ready func() bool) (*metrics, error) {
	const ns, sub = "protolake", "ingest"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		consumed:    counter("records_consumed_total", "Kafka records consumed (including re-reads after a dropped buffer).", "table"),
		rows:        counter("rows_committed_total", "Rows committed to the table.", "table"),
		bytes:       counter("bytes_committed_total", "Bytes of data files committed to the table.", "table"),
		files:       counter("files_committed_total", "Data files committed to the table.", "table"),
		commits:     counter("commits_total", "Delta commits made.", "table"),
		conflicts:   counter("commit_fenced_total", "Commits refused because another instance committed the same partitions (buffers dropped and re-read).", "table"),
		retries:     counter("commit_failures_total", "Commits that failed and will be retried with the buffers kept.", "table"),
		deadLetters: counter("dead_letters_total", "Records written to the dead-letter table.", "table"),
		resets:      counter("buffer_resets_total", "Times the buffered rows of a table were dropped and its partitions re-read from the table's watermarks.", "table"),
		commitLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "commit_duration_seconds",
			Help: "Time to flush and commit a table (successful commits).", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"table"}),
		buffered:   gauge("buffered_bytes", "Memory the table's writers hold in buffers (not yet in files; by capacity, with the buffers kept for next files): what counts against memory_limit.", "table"),
		version:    gauge("table_version", "The table version of the last commit.", "table"),
		lastCommit: gauge("last_commit_timestamp_seconds", "Unix time of the last successful commit.", "table"),
		lag:        gauge("partition_lag", "Records between the last consumed offset and the partition's high watermark.", "topic", "partition"),
		paused:     gauge("fetch_paused", "1 while fetching for the table is paused (memory limit with commits failing, or uploads behind).", "table"),

		registryRejects: counter("registry_rejected_total", "Records of a registry-fed table dead-lettered by the schema resolver, by reason: unframed, unknown_id, other_subject, other_message, bad_schema, incompatible.", "table", "reason"),
		registryWaiting: gauge("registry_unavailable", "1 while the table waits for its schema registry (fetches paused, not ready).", "table"),

		uploading:      gauge("uploading_bytes", "Bytes of finished data files not uploaded yet (they count against memory_limit).", "table"),
		uploadFailures: counter("upload_failures_total", "Data-file uploads that failed and are retried (the file is kept).", "table"),
		storageErrors:  counter("storage_errors_total", "Storage requests that failed or timed out (storage.request_timeout).", "table", "op"),
		slowRequests:   counter("storage_slow_requests_total", "Storage requests that took longer than storage.slow_request.", "table", "op"),
		fetchErrors:    counter("fetch_errors_total", "Errors Kafka fetches returned, by topic.", "topic"),
		fetchBytes:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "fetch_max_bytes", Help: "FetchMaxBytes the Kafka client asks now: memory_limit/32 (1 to 50 MiB) divided by the bytes a fetched byte holds once decompressed and read into records, at least 1 MiB."}),
		expired:        counter("offsets_expired_total", "Offsets above a table's watermark that Kafka deleted (retention) before they were committed: lost.", "table"),
		ready: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ready", Help: "1 when /readyz is 200."}, func() float64 {
			if ready() {
				return 1
			}
			return 0
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.consumed, m.rows, m.bytes, m.files, m.commits, m.conflicts, m.retries, m.deadLetters, m.resets, m.commitLatency, m.buffered, m.version, m.lastCommit, m.lag, m.paused,
			m.registryRejects, m.registryWaiting, m.uploading, m.uploadFailures, m.storageErrors, m.slowRequests, m.fetchErrors, m.fetchBytes, m.expired, m.ready} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
