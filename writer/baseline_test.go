package writer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/protolake/protolake/internal/adtrackpb"
)

// The generated baseline: proto.Unmarshal into the protoc-gen-go structs,
// copied into a plain row struct parquet-go can reflect (it cannot reflect
// generated messages: oneof interfaces, internal state), written with
// GenericWriter[T] and zstd. The row struct mirrors the writer's type mapping.

type genKafka struct {
	Topic     string `parquet:"topic"`
	Partition int32  `parquet:"partition"`
	Offset    int64  `parquet:"offset"`
	Timestamp int64  `parquet:"timestamp,timestamp(microsecond)"`
}

type genDevice struct {
	Type         string `parquet:"type"`
	Os           string `parquet:"os"`
	OsVersion    string `parquet:"os_version"`
	Browser      string `parquet:"browser"`
	UserAgent    string `parquet:"user_agent"`
	ScreenWidth  int64  `parquet:"screen_width"`
	ScreenHeight int64  `parquet:"screen_height"`
}

type genGeo struct {
	Country    string  `parquet:"country"`
	Region     string  `parquet:"region"`
	City       string  `parquet:"city"`
	Latitude   float64 `parquet:"latitude"`
	Longitude  float64 `parquet:"longitude"`
	PostalCode *string `parquet:"postal_code,optional"`
}

type genSize struct {
	Width  int32 `parquet:"width"`
	Height int32 `parquet:"height"`
}

type genPlacement struct {
	SiteID   string    `parquet:"site_id"`
	PageURL  string    `parquet:"page_url"`
	SlotID   string    `parquet:"slot_id"`
	Format   string    `parquet:"format"`
	Sizes    []genSize `parquet:"sizes,list"`
	Position int32     `parquet:"position"`
}

type genBid struct {
	Bidder      string   `parquet:"bidder"`
	PriceMicros [9]byte  `parquet:"price_micros,decimal(0:20)"`
	Latency     *int64   `parquet:"latency,optional"`
	Won         bool     `parquet:"won"`
	DealIDs     []string `parquet:"deal_ids,list"`
}

type genExperiment struct {
	Arm        string `parquet:"arm"`
	Bucket     int32  `parquet:"bucket"`
	EnrolledAt *int64 `parquet:"enrolled_at,optional,timestamp(microsecond)"`
}

type genAny struct {
	TypeURL string `parquet:"type_url"`
	Value   []byte `parquet:"value"`
}

type genRow struct {
	ImpressionID     string                   `parquet:"impression_id"`
	EventTime        *int64                   `parquet:"event_time,optional,timestamp(microsecond)"`
	CampaignID       string                   `parquet:"campaign_id"`
	CreativeID       string                   `parquet:"creative_id"`
	AdvertiserID     int64                    `parquet:"advertiser_id"`
	UserIDHash       [9]byte                  `parquet:"user_id_hash,decimal(0:20)"`
	Device           *genDevice               `parquet:"device,optional"`
	Geo              *genGeo                  `parquet:"geo,optional"`
	Placement        *genPlacement            `parquet:"placement,optional"`
	Segments         []string                 `parquet:"segments,list"`
	Labels           map[string]string        `parquet:"labels"`
	Bids             []genBid                 `parquet:"bids,list"`
	Experiments      map[string]genExperiment `parquet:"experiments"`
	RenderTime       *int64                   `parquet:"render_time,optional"`
	ViewableMs       *int64                   `parquet:"viewable_ms,optional"`
	Referrer         *string                  `parquet:"referrer,optional"`
	CpmMicros        *[9]byte                 `parquet:"cpm_micros,optional,decimal(0:20)"`
	Cpc              *float64                 `parquet:"cpc,optional"`
	PricingRule      *string                  `parquet:"pricing_rule,optional"`
	SamplingRatePpm  int64                    `parquet:"sampling_rate_ppm"`
	TraceContext     []byte                   `parquet:"trace_context"`
	ExtensionData    *genAny                  `parquet:"extension_data,optional"`
	Custom           *string                  `parquet:"custom,optional"`
	IsTest           bool                     `parquet:"is_test"`
	ViewabilityScore float32                  `parquet:"viewability_score"`
	ConsentString    *string                  `parquet:"consent_string,optional"`
	FrequencyCaps    []int32                  `parquet:"frequency_caps,list"`
	RequestID        [9]byte                  `parquet:"request_id,decimal(0:20)"`
	BidFloorNanos    int64                    `parquet:"bid_floor_nanos"`
	ClockSkewMs      int64                    `parquet:"clock_skew_ms"`
	Viewable         *bool                    `parquet:"viewable,optional"`
	Kafka            genKafka                 `parquet:"_kafka"`
	Unknown          []byte                   `parquet:"_unknown,optional"`
}

func dec20(v uint64) (b [9]byte) {
	binary.BigEndian.PutUint64(b[1:], v)
	return b
}

func durMicros(s, n int64) int64 { return s*1_000_000 + n/1000 }

// toGenRow maps a generated message into the row struct, as a hand-written
// pipeline would.
func toGenRow(m *adtrackpb.AdImpression, row *genRow, offset int64) {
	*row = genRow{
		ImpressionID:     m.ImpressionId,
		CampaignID:       m.CampaignId,
		CreativeID:       m.CreativeId,
		AdvertiserID:     m.AdvertiserId,
		UserIDHash:       dec20(m.UserIdHash),
		SamplingRatePpm:  int64(m.SamplingRatePpm),
		TraceContext:     m.TraceContext,
		IsTest:           m.IsTest,
		ViewabilityScore: m.ViewabilityScore,
		ConsentString:    m.ConsentString,
		FrequencyCaps:    m.FrequencyCaps,
		RequestID:        dec20(m.RequestId),
		BidFloorNanos:    m.BidFloorNanos,
		ClockSkewMs:      m.ClockSkewMs,
		Segments:         m.Segments,
		Labels:           m.Labels,
		Kafka:            genKafka{Topic: "ads", Partition: 0, Offset: offset, Timestamp: 1_790_000_000_000_000},
	}
	if t := m.EventTime; t != nil {
		v := durMicros(t.Seconds, int64(t.Nanos))
		row.EventTime = &v
	}
	if d := m.Device; d != nil {
		row.Device = &genDevice{Type: d.Type.String(), Os: d.Os, OsVersion: d.OsVersion, Browser: d.Browser, UserAgent: d.UserAgent, ScreenWidth: int64(d.ScreenWidth), ScreenHeight: int64(d.ScreenHeight)}
	}
	if g := m.Geo; g != nil {
		row.Geo = &genGeo{Country: g.Country, Region: g.Region, City: g.City, Latitude: g.Latitude, Longitude: g.Longitude, PostalCode: g.PostalCode}
	}
	if p := m.Placement; p != nil {
		gp := &genPlacement{SiteID: p.SiteId, PageURL: p.PageUrl, SlotID: p.SlotId, Format: p.Format.String(), Position: p.Position}
		for _, s := range p.Sizes {
			gp.Sizes = append(gp.Sizes, genSize{Width: s.Width, Height: s.Height})
		}
		row.Placement = gp
	}
	for _, b := range m.Bids {
		gb := genBid{Bidder: b.Bidder, PriceMicros: dec20(b.PriceMicros), Won: b.Won, DealIDs: b.DealIds}
		if b.Latency != nil {
			v := durMicros(b.Latency.Seconds, int64(b.Latency.Nanos))
			gb.Latency = &v
		}
		row.Bids = append(row.Bids, gb)
	}
	if len(m.Experiments) > 0 {
		row.Experiments = make(map[string]genExperiment, len(m.Experiments))
		for k, e := range m.Experiments {
			ge := genExperiment{Arm: e.Arm, Bucket: e.Bucket}
			if e.EnrolledAt != nil {
				v := durMicros(e.EnrolledAt.Seconds, int64(e.EnrolledAt.Nanos))
				ge.EnrolledAt = &v
			}
			row.Experiments[k] = ge
		}
	}
	if d := m.RenderTime; d != nil {
		v := durMicros(d.Seconds, int64(d.Nanos))
		row.RenderTime = &v
	}
	if w := m.ViewableMs; w != nil {
		v := w.Value
		row.ViewableMs = &v
	}
	if w := m.Referrer; w != nil {
		v := w.Value
		row.Referrer = &v
	}
	switch p := m.Pricing.(type) {
	case *adtrackpb.AdImpression_CpmMicros:
		v := dec20(p.CpmMicros)
		row.CpmMicros = &v
	case *adtrackpb.AdImpression_Cpc:
		v := p.Cpc
		row.Cpc = &v
	case *adtrackpb.AdImpression_PricingRule:
		v := p.PricingRule
		row.PricingRule = &v
	}
	if a := m.ExtensionData; a != nil {
		row.ExtensionData = &genAny{TypeURL: a.TypeUrl, Value: a.Value}
	}
	if s := m.Custom; s != nil {
		j, _ := protojson.Marshal(s)
		v := string(j)
		row.Custom = &v
	}
	if w := m.Viewable; w != nil {
		v := w.Value
		row.Viewable = &v
	}
}

// genBaseline runs the generated pipeline over msgs[i%len] for n messages,
// finishing a file (Put into the store) every rowsPerFile rows.
type genBaseline struct {
	buf     bytes.Buffer
	w       *parquet.GenericWriter[genRow]
	rows    []genRow
	msg     adtrackpb.AdImpression
	n       int
	perFile int
	put     func(ctx context.Context, key string, r io.Reader) error
	files   int
}

func newGenBaseline(perFile int, put func(ctx context.Context, key string, r io.Reader) error) *genBaseline {
	g := &genBaseline{perFile: perFile, put: put, rows: make([]genRow, 1)}
	g.w = parquet.NewGenericWriter[genRow](&g.buf, parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}), parquet.DataPageVersion(1))
	return g
}

func (g *genBaseline) write(b []byte, offset int64) error {
	if err := proto.Unmarshal(b, &g.msg); err != nil {
		return err
	}
	toGenRow(&g.msg, &g.rows[0], offset)
	if _, err := g.w.Write(g.rows); err != nil {
		return err
	}
	g.n++
	if g.n == g.perFile {
		return g.finish()
	}
	return nil
}

func (g *genBaseline) finish() error {
	if err := g.w.Close(); err != nil {
		return err
	}
	g.files++
	if err := g.put(context.Background(), fmt.Sprintf("gen/part-%d.parquet", g.files), bytes.NewReader(g.buf.Bytes())); err != nil {
		return err
	}
	g.buf.Reset()
	g.w.Reset(&g.buf)
	g.n = 0
	return nil
}
