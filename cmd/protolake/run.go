package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/confpath"
	"github.com/protolake/protolake/internal/suggest"
	"github.com/protolake/protolake/schema"
)

const runUsage = `usage: protolake run --config FILE [--until-caught-up] [--PATH=VALUE]...

run consumes the configured Kafka topics with a consumer group and keeps the
Delta tables up to date, exactly once. Several instances with the same
kafka.group_id share the partitions. SIGTERM/SIGINT flush, commit, leave the
group and exit 0.

  --config FILE       the YAML configuration (see protolake.yaml)
  --until-caught-up   stop (exit 0) once the partitions are consumed up to
                      the end offsets seen at start: for cron / CronJob runs
  --PATH=VALUE        set any config field by its YAML path, e.g.
                      --kafka.group_id=lake --tables.0.flush.max_rows=100000

Every field can also be set by environment: PROTOLAKE_KAFKA_GROUP_ID=lake,
PROTOLAKE_TABLES_0_FLUSH_MAX_ROWS=100000. Precedence: flags > environment >
file > defaults. See docs/operations.md.
`

// loadRunConfig reads the config file, then the environment, then the flag
// overrides.
func loadRunConfig(args []string, environ []string) (cfg ingest.Config, untilCaughtUp bool, err error) {
	var file string
	var overrides [][2]string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name == "" {
			return cfg, false, usageError{fmt.Errorf("unexpected argument %q", a)}
		}
		switch name {
		case "until-caught-up":
			untilCaughtUp = !hasValue || value == "true"
			continue
		case "h", "help":
			return cfg, false, errHelp
		}
		if err := checkRunFlag(name); err != nil {
			return cfg, false, err
		}
		if !hasValue {
			if i+1 >= len(args) {
				return cfg, false, usageError{fmt.Errorf("flag --%s needs a value", name)}
			}
			i++
			value = args[i]
		}
		if name == "config" || name == "c" {
			file = value
			continue
		}
		overrides = append(overrides, [2]string{name, value})
	}
	// Every problem is reported at once: those of the file's values, then
	// of the environment and flags, then Validate's.
	var problems []error
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return cfg, false, usageError{fmt.Errorf("read config: %w", err)}
		}
		if cfg, err = ingest.ParseConfig(data); err != nil {
			if errors.Is(err, ingest.ErrConfigSyntax) {
				return cfg, false, usageError{fmt.Errorf("%s: %w", file, err)}
			}
			var each interface{ Unwrap() []error }
			if errors.As(err, &each) {
				for _, e := range each.Unwrap() {
					problems = append(problems, fmt.Errorf("%s, %w", file, e))
				}
			} else {
				problems = append(problems, fmt.Errorf("%s, %w", file, err))
			}
		}
	}
	// Every PROTOLAKE_* variable must name a setting, so a typo is an error;
	// the test harnesses' own variables are PLTEST_*.
	if err := confpath.FromEnv(&cfg, environ, "PROTOLAKE_"); err != nil {
		problems = append(problems, fmt.Errorf("environment: %w", err))
	}
	for _, o := range overrides {
		if err := confpath.Set(&cfg, o[0], o[1]); err != nil {
			problems = append(problems, fmt.Errorf("flag --%s: %w", o[0], err))
		}
	}
	if file == "" && len(cfg.Tables) == 0 && len(problems) == 0 {
		return cfg, false, usageError{errors.New("--config FILE is required")}
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return cfg, false, usageError{fmt.Errorf("invalid config:\n%w", errors.Join(problems...))}
	}
	return cfg, untilCaughtUp, nil
}

var errHelp = errors.New("help")

// runFlags are the flags of run itself; any other name must be a config
// path (--kafka.group_id=…).
var runFlags = []string{"config", "until-caught-up", "help"}

// checkRunFlag refuses a flag that is neither one of runFlags nor a config
// path whose first segment is a top-level config key, suggesting the
// nearest name: --untill-caught-up is a typo, not a setting.
func checkRunFlag(name string) error {
	if name == "c" || slices.Contains(runFlags, name) {
		return nil
	}
	first, _, _ := strings.Cut(name, ".")
	keys := confpath.Keys(ingest.Config{})
	if slices.Contains(keys, first) {
		return nil
	}
	msg := fmt.Sprintf("unknown flag --%s", name)
	if s := suggest.Closest(name, append(append([]string{}, runFlags...), keys...), 1); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean --%s?)", s[0])
	}
	return usageError{fmt.Errorf("%s; run takes --config FILE, --until-caught-up and config settings as --PATH=VALUE (top level: %s); see protolake run --help", msg, strings.Join(keys, ", "))}
}

// goMemory is the memory the Go runtime holds from the OS now (what
// debug.SetMemoryLimit limits).
func goMemory() int64 {
	m := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(m)
	return int64(m[0].Value.Uint64() - m[1].Value.Uint64())
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, until, err := loadRunConfig(args, os.Environ())
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, runUsage)
		return nil
	}
	if err != nil {
		return err
	}
	logger := cfg.Log.Logger(stderr)
	// memory_limit bounds the memory run takes above its baseline (see
	// docs/operations.md); the Go runtime's default would let garbage grow
	// the heap to twice the live data. Unless GOMEMLIMIT says otherwise,
	// the runtime collects harder once its memory nears what it holds
	// apart from buffers (the baseline, then the tables' snapshots too:
	// softLimit) plus ¾ of memory_limit: the last quarter is for what the
	// runtime does not count (code pages first touched later, threads' C
	// stacks) and for its overshoot, the limit being soft: measured in
	// BenchmarkPeakRSS.
	var soft *softLimit
	if os.Getenv("GOMEMLIMIT") == "" {
		soft = newSoftLimit(int64(cfg.MemoryLimit))
		// No soft limit while the tables' snapshots load: below their
		// size, it would make the collector run without pause (a
		// 1M-file load under GOMEMLIMIT=1GiB took 57% more CPU); nothing
		// is buffered yet.
		debug.SetMemoryLimit(math.MaxInt64)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The listener is bound before NewRunner creates any table: an address
	// that cannot be served leaves nothing behind.
	var ln net.Listener
	if cfg.HTTP.Listen != "off" {
		if ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		defer ln.Close()
	}
	runner, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: logger, Registerer: reg, UntilCaughtUp: until, EngineInfo: "protolake/" + version})
	if err != nil {
		var ie *schema.IncompatibleError
		if errors.As(err, &ie) {
			return exitError{1, fmt.Errorf("%w\nrefusing to start: deploy a compatible descriptor (add fields, reserve removed numbers) or write to a new table", err)}
		}
		return err
	}
	if soft != nil {
		// The snapshots are loaded and nothing is buffered yet: the live
		// heap now is the baseline plus the snapshots.
		runtime.GC()
		debug.SetMemoryLimit(soft.observe(liveHeap(), 0))
		tctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); soft.track(tctx, runner.HeldBytes) }()
		defer func() { stop(); <-done }()
	}
	if ln != nil {
		srv := &http.Server{Handler: ingest.Handler(runner, reg), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		logger.Info("serving /healthz, /readyz, /metrics", "addr", ln.Addr().String())
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	if err := runner.Run(ctx); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}
