package commitlog

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Config tunes a Table. The zero value is valid: every field has a
// documented default applied by Open.
type Config struct {
	// EngineInfo is written to commitInfo.engineInfo. Default "protolake/dev";
	// the binary sets "protolake/<version>".
	EngineInfo string
	// MaxAttempts bounds how many times one commit tries to write a log
	// entry (conflicts with other writers and ambiguous writes each use an
	// attempt). Default 50.
	MaxAttempts int
	// RetryBackoff is the base of the jittered exponential backoff between
	// attempts: attempt n waits a random time in [0, min(MaxRetryBackoff,
	// RetryBackoff·2^n)). Default 5ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the backoff. Default 1s.
	MaxRetryBackoff time.Duration
	// CheckpointInterval, when > 0, overrides the table's
	// delta.checkpointInterval (default 10): a checkpoint is written after
	// every commit whose version is a multiple of it.
	CheckpointInterval int
	// DisableCheckpoints turns automatic checkpoints off (the Checkpoint
	// method still works).
	DisableCheckpoints bool
	// DisableLogCleanup turns off removing expired log entries after a
	// checkpoint (the table's delta.enableExpiredLogCleanup=false does too).
	DisableLogCleanup bool
	// LogCleanupInterval is how often, at most, the automatic log cleanup
	// after a checkpoint runs (it reads the expired head of the log). Table.CleanupLog always
	// runs. Default 1h.
	LogCleanupInterval time.Duration
	// BackgroundCheckpoints writes the automatic checkpoint (and runs the
	// log cleanup) in a goroutine after Commit returns, so that a
	// checkpoint commit costs what any commit costs whatever the table's
	// size. One runs at a time per Table; a checkpoint due while one runs
	// is skipped (the next interval writes one). Failures are logged.
	// Table.WaitCheckpoints waits for the running one.
	BackgroundCheckpoints bool
	// Logger receives retries, skipped checkpoints and cleanup. Default:
	// discard.
	Logger *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// Validate reports invalid settings.
func (c Config) Validate() error {
	var errs []error
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("MaxAttempts is %d, want >= 0 (0 means the default 50)", c.MaxAttempts))
	}
	if c.RetryBackoff < 0 || c.MaxRetryBackoff < 0 {
		errs = append(errs, errors.New("retry backoffs must not be negative"))
	}
	if c.LogCleanupInterval < 0 {
		errs = append(errs, fmt.Errorf("LogCleanupInterval is %v, want >= 0 (0 means the default 1h)", c.LogCleanupInterval))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, fmt.Errorf("CheckpointInterval is %d, want >= 0 (0 means the table's setting)", c.CheckpointInterval))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.EngineInfo == "" {
		c.EngineInfo = "protolake/dev"
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 50
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 5 * time.Millisecond
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = time.Second
	}
	if c.LogCleanupInterval == 0 {
		c.LogCleanupInterval = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Table properties protolake reads, with their Delta defaults.
const (
	PropCheckpointInterval           = "delta.checkpointInterval"           // default 10
	PropLogRetentionDuration         = "delta.logRetentionDuration"         // default "interval 30 days"
	PropDeletedFileRetentionDuration = "delta.deletedFileRetentionDuration" // default "interval 1 week"
	PropEnableExpiredLogCleanup      = "delta.enableExpiredLogCleanup"      // default true
	PropAppendOnly                   = "delta.appendOnly"                   // default false

	// PropProtoMessage is the full name of the table's protobuf message.
	PropProtoMessage = "protolake.proto.message"
	// PropProtoFingerprint is the sha256 of the message's transitive
	// descriptor set; the set is archived under DescriptorKey.
	PropProtoFingerprint = "protolake.proto.fingerprint"
	// PropProtoVersion is an optional human version label.
	PropProtoVersion = "protolake.proto.version"
	// TagProtoFingerprint is the add tag naming the descriptor a file was
	// written with.
	TagProtoFingerprint = "protolake.proto.fingerprint"
)

// Default retention and interval values (Delta's defaults).
const (
	DefaultCheckpointInterval   = 10
	DefaultLogRetention         = 30 * 24 * time.Hour
	DefaultDeletedFileRetention = 7 * 24 * time.Hour
)

// checkpointInterval returns the interval from the configuration.
func checkpointInterval(conf map[string]string) int {
	if s, ok := conf[PropCheckpointInterval]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			return n
		}
	}
	return DefaultCheckpointInterval
}

// durationProp parses a table property holding a Spark calendar interval
// ("interval 30 days", "interval 1 week", "7 days") or a Go duration
// ("168h"). An absent or unparsable value gives def.
func durationProp(conf map[string]string, key string, def time.Duration) time.Duration {
	s, ok := conf[key]
	if !ok {
		return def
	}
	d, err := ParseInterval(s)
	if err != nil {
		return def
	}
	return d
}

// ParseInterval parses a Delta/Spark interval string such as
// "interval 30 days", "interval 1 week", "2 hours" or a Go duration "168h".
func ParseInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	s = strings.TrimSpace(strings.TrimPrefix(s, "interval"))
	f := strings.Fields(s)
	if len(f) == 0 || len(f)%2 != 0 {
		return 0, fmt.Errorf("invalid interval %q", s)
	}
	var total time.Duration
	for i := 0; i < len(f); i += 2 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid interval %q", s)
		}
		var unit time.Duration
		switch strings.TrimSuffix(f[i+1], "s") {
		case "millisecond":
			unit = time.Millisecond
		case "second":
			unit = time.Second
		case "minute":
			unit = time.Minute
		case "hour":
			unit = time.Hour
		case "day":
			unit = 24 * time.Hour
		case "week":
			unit = 7 * 24 * time.Hour
		default:
			return 0, fmt.Errorf("invalid interval %q: unknown unit %q", s, f[i+1])
		}
		if n > int64(1<<62)/int64(unit) {
			return 0, fmt.Errorf("invalid interval %q: too long", s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}
