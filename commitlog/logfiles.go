package commitlog

import (
	"fmt"
	"strconv"
	"strings"
)

// LogDir is the directory of the Delta log, relative to the table root.
const LogDir = "_delta_log/"

// lastCheckpointKey is the key of the _last_checkpoint hint.
const lastCheckpointKey = LogDir + "_last_checkpoint"

// CommitKey returns the key of the commit file for version v.
func CommitKey(v int64) string { return fmt.Sprintf("%s%020d.json", LogDir, v) }

// CheckpointKey returns the key of the classic single-file checkpoint for
// version v.
func CheckpointKey(v int64) string { return fmt.Sprintf("%s%020d.checkpoint.parquet", LogDir, v) }

// logFileKind classifies the files in _delta_log.
type logFileKind int

const (
	kindOther logFileKind = iota
	kindCommit
	kindCheckpoint      // classic single file
	kindCheckpointPart  // one part of a multi-part checkpoint
	kindCheckpointOther // V2 (UUID-named) checkpoints: need a reader feature we do not implement
)

// logFile is one parsed _delta_log entry.
type logFile struct {
	key     string
	kind    logFileKind
	version int64
	part    int // 1-based, for kindCheckpointPart
	parts   int // total, for kindCheckpointPart
	size    int64
}

// parseLogFileName classifies a key under _delta_log/. Names it does not
// recognise (crc files, temp files, compacted logs) are kindOther.
func parseLogFileName(key string) logFile {
	lf := logFile{key: key}
	name, ok := strings.CutPrefix(key, LogDir)
	if !ok || strings.Contains(name, "/") || len(name) < 21 {
		return lf
	}
	digits, rest := name[:20], name[20:]
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v < 0 || !allDigits(digits) {
		return lf
	}
	lf.version = v
	switch {
	case rest == ".json":
		lf.kind = kindCommit
	case rest == ".checkpoint.parquet":
		lf.kind = kindCheckpoint
	case strings.HasPrefix(rest, ".checkpoint.") && strings.HasSuffix(rest, ".parquet"):
		mid := strings.TrimSuffix(strings.TrimPrefix(rest, ".checkpoint."), ".parquet")
		a, b, ok := strings.Cut(mid, ".")
		if ok && len(a) == 10 && len(b) == 10 && allDigits(a) && allDigits(b) {
			part, _ := strconv.Atoi(a)
			parts, _ := strconv.Atoi(b)
			if part >= 1 && parts >= 1 && part <= parts {
				lf.kind, lf.part, lf.parts = kindCheckpointPart, part, parts
				return lf
			}
		}
		lf.kind = kindCheckpointOther
	case strings.HasPrefix(rest, ".checkpoint.") && strings.HasSuffix(rest, ".json"):
		lf.kind = kindCheckpointOther
	}
	return lf
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
