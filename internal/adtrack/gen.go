package adtrack

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protolake/protolake/internal/adtrackpb"
)

// CorpusBase is the event time of impression 0 in the benchmark corpus.
var CorpusBase = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

var (
	countries = []string{"US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "AU", "ES", "IT", "NL"}
	cities    = []string{"New York", "Berlin", "Paris", "London", "Tokyo", "São Paulo", "Mumbai", "Toronto", "Sydney", "Madrid", "Rome", "Amsterdam", "Zürich"}
	oses      = []string{"iOS", "Android", "Windows", "macOS", "Linux", "tvOS"}
	browsers  = []string{"Chrome", "Safari", "Firefox", "Edge", "Samsung Internet"}
	bidders   = []string{"appnexus", "rubicon", "openx", "pubmatic", "index", "criteo", "triplelift"}
	segs      = []string{"sports", "travel", "auto", "finance", "tech", "fashion", "food", "gaming", "music", "news", "parents", "pets", "health", "diy", "movies"}
	labelKeys = []string{"env", "dc", "version", "ab", "tier", "source", "channel"}
	arms      = []string{"control", "treatment_a", "treatment_b"}
	rules     = []string{"floor-1", "floor-2", "first-price", "second-price"}
)

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

func hexID(r *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

// Impression builds the i-th varied impression from r: about 20 fields set
// on average (~500 bytes on the wire), nested messages, a Timestamp, a
// repeated string, a map<string,string>, and now and then every other kind
// of field of AdImpression. Its event time is base + i×step plus up to a
// second of jitter. The same r state and arguments give the same message,
// so a seeded r gives a deterministic corpus.
func Impression(r *rand.Rand, i int, base time.Time, step time.Duration) *adtrackpb.AdImpression {
	ts := base.UnixMicro() + int64(i)*step.Microseconds() + r.Int64N(1_000_000)
	m := &adtrackpb.AdImpression{
		ImpressionId: hexID(r, 32),
		EventTime:    timestamppb.New(time.UnixMicro(ts).UTC()),
		CampaignId:   fmt.Sprintf("cmp-%04d", r.IntN(500)),
		CreativeId:   fmt.Sprintf("cr-%05d", r.IntN(5000)),
		AdvertiserId: int64(r.IntN(200)) + 1000,
		UserIdHash:   r.Uint64(),
		Device: &adtrackpb.Device{
			Type:         adtrackpb.DeviceType(r.IntN(5)),
			Os:           pick(r, oses),
			OsVersion:    fmt.Sprintf("%d.%d", 10+r.IntN(8), r.IntN(5)),
			Browser:      pick(r, browsers),
			UserAgent:    "Mozilla/5.0 (" + pick(r, oses) + ") AppleWebKit/537.36 (KHTML, like Gecko) " + pick(r, browsers) + fmt.Sprintf("/%d.0", 100+r.IntN(30)),
			ScreenWidth:  uint32(320 + 64*r.IntN(30)),
			ScreenHeight: uint32(480 + 64*r.IntN(20)),
		},
		Geo: &adtrackpb.Geo{
			Country:   pick(r, countries),
			Region:    fmt.Sprintf("R%02d", r.IntN(40)),
			City:      pick(r, cities),
			Latitude:  r.Float64()*180 - 90,
			Longitude: r.Float64()*360 - 180,
		},
		Placement: &adtrackpb.Placement{
			SiteId:   fmt.Sprintf("site-%03d", r.IntN(300)),
			PageUrl:  fmt.Sprintf("https://news.example.com/%s/article-%d", pick(r, segs), r.IntN(100000)),
			SlotId:   fmt.Sprintf("slot-%d", r.IntN(8)),
			Format:   adtrackpb.AdFormat(r.IntN(5)),
			Position: int32(r.IntN(10) - 2),
		},
		SamplingRatePpm:  uint32(r.IntN(1_000_000)),
		IsTest:           r.IntN(50) == 0,
		ViewabilityScore: r.Float32(),
		RequestId:        r.Uint64(),
		BidFloorNanos:    r.Int64N(5_000_000_000),
		ClockSkewMs:      r.Int64N(2000) - 1000,
		RenderTime:       durationpb.New(time.Duration(r.Int64N(500_000_000))),
	}
	if r.IntN(4) == 0 {
		m.Geo.PostalCode = proto.String(fmt.Sprintf("%05d", r.IntN(99999)))
	}
	for range 1 + r.IntN(2) {
		m.Placement.Sizes = append(m.Placement.Sizes, &adtrackpb.Size{Width: int32(100 * (1 + r.IntN(7))), Height: int32(50 * (1 + r.IntN(12)))})
	}
	for range r.IntN(5) {
		m.Segments = append(m.Segments, pick(r, segs))
	}
	if n := r.IntN(4); n > 0 {
		m.Labels = make(map[string]string, n)
		for range n {
			m.Labels[pick(r, labelKeys)] = fmt.Sprintf("v%d", r.IntN(20))
		}
	}
	for range r.IntN(3) {
		b := &adtrackpb.Bid{
			Bidder:      pick(r, bidders),
			PriceMicros: uint64(r.IntN(10_000_000)),
			Latency:     durationpb.New(time.Duration(r.Int64N(200_000_000))),
			Won:         r.IntN(3) == 0,
		}
		if r.IntN(3) == 0 {
			b.DealIds = []string{fmt.Sprintf("deal-%d", r.IntN(50))}
		}
		m.Bids = append(m.Bids, b)
	}
	if r.IntN(3) == 0 {
		m.Experiments = map[string]*adtrackpb.Experiment{
			fmt.Sprintf("exp-%d", r.IntN(10)): {Arm: pick(r, arms), Bucket: int32(r.IntN(100)), EnrolledAt: timestamppb.New(time.UnixMicro(ts - r.Int64N(1e12)).UTC())},
		}
	}
	if r.IntN(2) == 0 {
		m.ViewableMs = wrapperspb.Int64(r.Int64N(30000))
	}
	if r.IntN(3) == 0 {
		m.Referrer = wrapperspb.String(fmt.Sprintf("https://search.example.org/?q=%s", pick(r, segs)))
	}
	switch r.IntN(4) {
	case 0:
		m.Pricing = &adtrackpb.AdImpression_CpmMicros{CpmMicros: uint64(r.IntN(20_000_000))}
	case 1:
		m.Pricing = &adtrackpb.AdImpression_Cpc{Cpc: float64(r.IntN(500)) / 100}
	case 2:
		m.Pricing = &adtrackpb.AdImpression_PricingRule{PricingRule: pick(r, rules)}
	}
	if r.IntN(2) == 0 {
		m.TraceContext = []byte(hexID(r, 16))
	}
	if r.IntN(10) == 0 {
		a, _ := anypb.New(wrapperspb.String(pick(r, segs)))
		m.ExtensionData = a
	}
	if r.IntN(10) == 0 {
		s, _ := structpb.NewStruct(map[string]any{"k": pick(r, segs), "n": float64(r.IntN(10))})
		m.Custom = s
	}
	if r.IntN(3) == 0 {
		m.ConsentString = proto.String("CP" + hexID(r, 20))
	}
	for range r.IntN(4) {
		m.FrequencyCaps = append(m.FrequencyCaps, int32(r.IntN(20)))
	}
	if r.IntN(2) == 0 {
		m.Viewable = wrapperspb.Bool(r.IntN(2) == 0)
	}
	return m
}

// Corpus returns n impressions from Impression with r = rand.NewPCG(seed1,
// seed2), event times step apart from CorpusBase, as deterministic wire
// bytes, and their total size: the benchmarks' distinct records.
func Corpus(seed1, seed2 uint64, n int, step time.Duration) ([][]byte, int64) {
	r := rand.New(rand.NewPCG(seed1, seed2))
	out := make([][]byte, n)
	var total int64
	for i := range out {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(Impression(r, i, CorpusBase, step))
		if err != nil {
			panic(fmt.Sprintf("adtrack: marshal impression %d: %v", i, err)) // generated messages always marshal
		}
		out[i] = b
		total += int64(len(b))
	}
	return out, total
}
