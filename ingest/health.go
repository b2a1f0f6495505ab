package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaHealth is what the Runner knows about its connection to Kafka: the
// outcome of its probes (a metadata request for its topics every
// probeInterval) and of its group session. Its mutex guards everything.
type kafkaHealth struct {
	mu        sync.Mutex
	lastProbe time.Time // last probe that got an answer without error
	probeErr  error     // the last probe's error (nil: it succeeded)
	// permanent errors: since when they have persisted (zero: none)
	probePerm      error
	probePermSince time.Time
	groupPerm      error
	groupPermSince time.Time
}

// probeInterval is how often Kafka is probed: at most 5s, and often enough
// to notice an outage well within the session timeout.
func (r *Runner) probeInterval() time.Duration {
	return max(100*time.Millisecond, min(5*time.Second, r.cfg.Kafka.SessionTimeout/3, r.cfg.Kafka.FatalAfter/4))
}

// permanent reports whether err is one retrying cannot fix: authentication
// (SASL), authorization (ACLs), an untrusted or mismatching TLS certificate,
// or a topic that does not exist.
func permanent(err error) bool {
	for _, e := range []error{
		kerr.SaslAuthenticationFailed, kerr.IllegalSaslState, kerr.UnsupportedSaslMechanism,
		kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
		kerr.UnknownTopicOrPartition, kerr.UnknownTopicID,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		record    tls.RecordHeaderError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record)
}

// watchKafka probes the brokers every probeInterval until ctx ends: a
// metadata request for the configured topics, which fails on an outage, on
// authentication, TLS and authorization errors, and names missing topics.
func (r *Runner) watchKafka(ctx context.Context) {
	defer r.workers.Done()
	iv := r.probeInterval()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*iv)
		err := r.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.noteProbe(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(iv):
		}
	}
}

func (r *Runner) probe(ctx context.Context) error {
	md, err := r.adm.Metadata(ctx, r.topics...)
	if err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	var errs []error
	for _, topic := range r.topics {
		td, ok := md.Topics[topic]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition))
		case td.Err != nil:
			errs = append(errs, fmt.Errorf("topic %s: %w", topic, td.Err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) noteProbe(err error) {
	h := &r.kafka
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if err == nil || ctxErr(err) {
		if err == nil {
			h.lastProbe, h.probeErr = now, nil
		}
		if h.probePerm != nil {
			r.log.Info("kafka errors cleared", "after", now.Sub(h.probePermSince).Round(time.Millisecond))
		}
		h.probePerm, h.probePermSince = nil, time.Time{}
		return
	}
	if h.probeErr == nil {
		r.log.Warn("kafka unreachable or failing", "err", err)
	}
	h.probeErr = err
	if !permanent(err) {
		return
	}
	if h.probePerm == nil {
		h.probePermSince = now
		r.log.Error("kafka error that retrying cannot fix; stopping unless it clears", "err", err, "fatal_after", r.cfg.Kafka.FatalAfter)
	}
	h.probePerm = err
}

func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled)
}

// noteFetchError records an error a poll returned: a permanent group error
// (authentication, group authorization) counts towards fatal_after until
// the group assigns partitions again.
func (r *Runner) noteFetchError(topic string, err error) {
	r.m.fetchErrors.WithLabelValues(topic).Inc()
	h := &r.kafka
	h.mu.Lock()
	defer h.mu.Unlock()
	var gs *kgo.ErrGroupSession
	if !errors.As(err, &gs) || !permanent(err) {
		return
	}
	if h.groupPerm == nil {
		h.groupPermSince = time.Now()
		r.log.Error("kafka group error that retrying cannot fix; stopping unless it clears", "err", err, "fatal_after", r.cfg.Kafka.FatalAfter)
	}
	h.groupPerm = err
}

// groupJoined clears the group's permanent error.
func (r *Runner) groupJoined() {
	h := &r.kafka
	h.mu.Lock()
	h.groupPerm, h.groupPermSince = nil, time.Time{}
	h.mu.Unlock()
}

// kafkaFatal returns the permanent error that has lasted kafka.fatal_after,
// or nil.
func (r *Runner) kafkaFatal() error {
	h := &r.kafka
	h.mu.Lock()
	defer h.mu.Unlock()
	fa := r.cfg.Kafka.FatalAfter
	for _, p := range []struct {
		err   error
		since time.Time
	}{{h.probePerm, h.probePermSince}, {h.groupPerm, h.groupPermSince}} {
		if p.err != nil && time.Since(p.since) >= fa {
			return fmt.Errorf("kafka: %w (failing for %v, kafka.fatal_after %v; fix the credentials, ACLs, certificates or topics and restart)", p.err, time.Since(p.since).Round(time.Second), fa)
		}
	}
	return nil
}

// kafkaProblem says why Kafka is not usable now, "" if it is: the last probe
// failed, or none has succeeded for three probe intervals.
func (r *Runner) kafkaProblem() string {
	h := &r.kafka
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastProbe.IsZero() && h.probeErr == nil {
		return "" // not probed yet: group membership decides
	}
	if h.probeErr != nil {
		return "kafka: " + h.probeErr.Error()
	}
	if d := time.Since(h.lastProbe); d > 3*r.probeInterval() {
		return fmt.Sprintf("kafka: no answer for %v", d.Round(time.Second))
	}
	return ""
}
