package schema

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/internal/ducktest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// duckType is the DuckDB type a reader must see for a Delta type.
func duckType(dt DataType) string {
	switch t := dt.(type) {
	case PrimitiveType:
		switch t {
		case TypeInteger:
			return "INTEGER"
		case TypeLong:
			return "BIGINT"
		case TypeFloat:
			return "FLOAT"
		case TypeDouble:
			return "DOUBLE"
		case TypeBoolean:
			return "BOOLEAN"
		case TypeString:
			return "VARCHAR"
		case TypeBinary:
			return "BLOB"
		case TypeTimestamp:
			return "TIMESTAMP WITH TIME ZONE"
		case TypeDate:
			return "DATE"
		case TypeDecimal20:
			return "DECIMAL(20,0)"
		}
	case *ArrayType:
		return duckType(t.ElementType) + "[]"
	case *MapType:
		return "MAP(" + duckType(t.KeyType) + ", " + duckType(t.ValueType) + ")"
	case *StructType:
		parts := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			parts[i] = f.Name + " " + duckType(f.Type)
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")"
	}
	return "?" + dt.String()
}

// TestDuckDBReadsDerivedSchema writes one row of every golden message with
// the derived Parquet schema, shredded by following the plan, and checks
// that DuckDB sees every data column with the type the Delta schema
// promises.
func TestDuckDBReadsDerivedSchema(t *testing.T) {
	db := ducktest.Open(t)
	dir := t.TempDir()
	for i, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			md := msg(t, c.set, c.msg)
			tb, err := Derive(md, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			m := newFilled(md, 3)
			k := &kafkaMeta{topic: "t", partition: 3, offset: 42, ts: time.UnixMicro(1700000000123456)}
			row := shredRow(t, tb.Plan, m, k, []byte{0x08, 0x01})
			path := writeParquet(t, tb, dir, fmt.Sprintf("%d.parquet", i), row)

			var want []string
			for _, f := range tb.Schema.Fields {
				if f.metaString(MetaPartition) != "" {
					continue // partition columns live in the path, not the file
				}
				want = append(want, f.Name+" "+duckType(f.Type))
			}
			var got []string
			for _, r := range ducktest.Rows(t, db, "DESCRIBE SELECT * FROM "+ducktest.ReadParquet(path)) {
				got = append(got, r[0]+" "+strings.ReplaceAll(r[1], `"`, ""))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("DuckDB columns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			n := ducktest.Rows(t, db, "SELECT count(*) FROM "+ducktest.ReadParquet(path))
			if n[0][0] != "1" {
				t.Errorf("DuckDB reads %s rows, want 1", n[0][0])
			}
		})
	}
}

// TestDuckDBValues shreds a fully populated AdImpression (from the
// generated Go types) and checks the values DuckDB reads back: levels,
// conversions and nulls as the plan prescribes.
func TestDuckDBValues(t *testing.T) {
	anyv, err := anypb.New(wrapperspb.String("x"))
	if err != nil {
		t.Fatal(err)
	}
	custom, err := structpb.NewStruct(map[string]any{"b": true, "a": []any{1.0, "z"}})
	if err != nil {
		t.Fatal(err)
	}
	imp := &adtrackpb.AdImpression{
		ImpressionId: "imp-1",
		EventTime:    &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 123456789},
		CampaignId:   "camp",
		AdvertiserId: -7,
		UserIdHash:   math.MaxUint64,
		Device:       &adtrackpb.Device{Type: adtrackpb.DeviceType(99), Os: "linux", ScreenWidth: math.MaxUint32},
		Placement: &adtrackpb.Placement{
			Format:   adtrackpb.AdFormat_AD_FORMAT_VIDEO,
			Sizes:    []*adtrackpb.Size{{Width: 300, Height: 250}, {Width: 728}},
			Position: -2,
		},
		Segments: []string{"s1", "s2", "s3"},
		Labels:   map[string]string{"b": "2", "a": "1"},
		Bids: []*adtrackpb.Bid{
			{Bidder: "x", PriceMicros: 1 << 63, Latency: durationpb.New(1500 * time.Microsecond), DealIds: []string{"d1", "d2"}},
			{Bidder: "y", Won: true},
		},
		Experiments: map[string]*adtrackpb.Experiment{
			"e1": {Arm: "A", Bucket: 3, EnrolledAt: timestamppb.New(time.Unix(1, 999).UTC())},
		},
		RenderTime:       durationpb.New(-2500 * time.Microsecond),
		ViewableMs:       wrapperspb.Int64(0),
		Pricing:          &adtrackpb.AdImpression_Cpc{Cpc: 0.25},
		SamplingRatePpm:  math.MaxUint32,
		TraceContext:     []byte{0xde, 0xad},
		ExtensionData:    anyv,
		Custom:           custom,
		ViewabilityScore: 0.5,
		FrequencyCaps:    []int32{1, -1},
		RequestId:        12345,
		BidFloorNanos:    -1,
		ClockSkewMs:      math.MinInt64,
	}
	md := imp.ProtoReflect().Descriptor()
	tb, err := Derive(md, Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := &kafkaMeta{topic: "ads", partition: 2, offset: 99, ts: time.UnixMicro(1700000000000001).UTC()}
	empty := &adtrackpb.AdImpression{}
	path := writeParquet(t, tb, t.TempDir(), "v.parquet",
		shredRow(t, tb.Plan, imp.ProtoReflect(), k, []byte{0xa8, 0x1f, 0x01}),
		shredRow(t, tb.Plan, empty.ProtoReflect(), nil, nil))
	db := ducktest.Open(t)
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	q := func(expr string) [][]string {
		return ducktest.Rows(t, db, "SELECT "+expr+" FROM "+ducktest.ReadParquet(path)+" ORDER BY impression_id DESC")
	}
	tests := []struct {
		expr string
		want string // row 1 | row 2
	}{
		{"impression_id", "imp-1|"},
		{"CAST(event_time AS VARCHAR)", "2023-11-14 22:13:20.123456+00|NULL"},
		{"campaign_id", "camp|"},
		{"advertiser_id", "-7|0"},
		{"CAST(user_id_hash AS VARCHAR)", "18446744073709551615|0"},
		{"device.type", "99|NULL"},
		{"device.os", "linux|NULL"},
		{"device.screen_width", "4294967295|NULL"},
		{"device.browser", "|NULL"},
		{"geo IS NULL", "true|true"},
		{"placement.format", "AD_FORMAT_VIDEO|NULL"},
		{"CAST(placement.sizes AS VARCHAR)", "[{'width': 300, 'height': 250}, {'width': 728, 'height': 0}]|NULL"},
		{"placement.position", "-2|NULL"},
		{"CAST(segments AS VARCHAR)", "[s1, s2, s3]|[]"},
		{"CAST(labels AS VARCHAR)", "{a=1, b=2}|{}"},
		{"len(bids)", "2|0"},
		{"CAST(bids[1].price_micros AS VARCHAR)", "9223372036854775808|NULL"},
		{"bids[1].latency", "1500|NULL"},
		{"CAST(bids[1].deal_ids AS VARCHAR)", "[d1, d2]|NULL"},
		{"CAST(bids[2].deal_ids AS VARCHAR)", "[]|NULL"},
		{"bids[2].won", "true|NULL"},
		{"experiments['e1'].arm", "A|NULL"},
		{"CAST(experiments['e1'].enrolled_at AS VARCHAR)", "1970-01-01 00:00:01+00|NULL"},
		{"render_time", "-2500|NULL"},
		{"viewable_ms", "0|NULL"},
		{"referrer", "NULL|NULL"},
		{"cpm_micros IS NULL", "true|true"},
		{"cpc", "0.25|NULL"},
		{"pricing_rule", "NULL|NULL"},
		{"sampling_rate_ppm", "4294967295|0"},
		{"hex(trace_context)", "DEAD|"},
		{"extension_data.type_url", "type.googleapis.com/google.protobuf.StringValue|NULL"},
		{"custom", `{"a":[1,"z"],"b":true}|NULL`},
		{"is_test", "false|false"},
		{"viewability_score", "0.5|0"},
		{"consent_string", "NULL|NULL"},
		{"CAST(frequency_caps AS VARCHAR)", "[1, -1]|[]"},
		{"CAST(request_id AS VARCHAR)", "12345|0"},
		{"bid_floor_nanos", "-1|0"},
		{"clock_skew_ms", "-9223372036854775808|0"},
		{"viewable", "NULL|NULL"},
		{"_kafka.topic", "ads|NULL"},
		{"_kafka.offset", "99|NULL"},
		{"CAST(_kafka.timestamp AS VARCHAR)", "2023-11-14 22:13:20.000001+00|NULL"},
		{"hex(_unknown)", "A81F01|NULL"},
	}
	for _, tt := range tests {
		rows := q(tt.expr)
		var got []string
		for _, r := range rows {
			got = append(got, r[0])
		}
		if g := strings.Join(got, "|"); g != tt.want {
			t.Errorf("%s = %q, want %q", tt.expr, g, tt.want)
		}
	}
}

// TestDuckDBRecursionCut checks that a cut subtree is stored as protobuf
// bytes that decode back to the original subtree.
func TestDuckDBRecursionCut(t *testing.T) {
	md := msg(t, "edge/edge.binpb", "edge.LinkedNode")
	tb, err := Derive(md, Options{MaxRecursionDepth: 1, NoKafkaMeta: true, NoUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	m := newFilled(md, 5) // id + next.next.next…
	row := shredRow(t, tb.Plan, m, nil, nil)
	path := writeParquet(t, tb, t.TempDir(), "r.parquet", row)
	db := ducktest.Open(t)
	rows := ducktest.Rows(t, db, "SELECT next.next FROM "+ducktest.ReadParquet(path))
	nextDesc := md.Fields().ByName("next")
	want := m.Get(nextDesc).Message().Get(nextDesc).Message().Interface()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] != fmt.Sprintf("%x", b) {
		t.Fatalf("next.next = %s, want %x", rows[0][0], b)
	}
}

// TestDuckDBParquetFooter reads the Parquet schema elements of a written
// file with DuckDB's parquet_schema(): physical, converted and logical
// types, repetition and field ids as a reader sees them (golden), plus the
// properties the type mapping promises.
func TestDuckDBParquetFooter(t *testing.T) {
	md := msg(t, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression")
	tb, err := Derive(md, Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := writeParquet(t, tb, t.TempDir(), "f.parquet", shredRow(t, tb.Plan, newFilled(md, 2), nil, nil))
	db := ducktest.Open(t)
	rows := ducktest.Rows(t, db, `SELECT name, coalesce(type, ''), coalesce(CAST(type_length AS VARCHAR), ''), coalesce(repetition_type, ''),
		coalesce(converted_type, ''), coalesce(CAST(precision AS VARCHAR), ''), coalesce(CAST(scale AS VARCHAR), ''),
		coalesce(CAST(field_id AS VARCHAR), ''), coalesce(logical_type, '') FROM parquet_schema('`+path+`')`)
	var b strings.Builder
	byName := map[string][]string{}
	for _, r := range rows {
		b.WriteString(strings.Join(r, " | ") + "\n")
		byName[r[0]] = r
	}
	golden(t, "adtrack.v1.AdImpression.duckdb_parquet_schema", []byte(b.String()))
	checks := []struct {
		name string
		col  int
		want string
	}{
		{"user_id_hash", 1, "FIXED_LEN_BYTE_ARRAY"},
		{"user_id_hash", 2, "9"},
		{"user_id_hash", 4, "DECIMAL"},
		{"user_id_hash", 5, "20"},
		{"user_id_hash", 6, "0"},
		{"user_id_hash", 7, "6"},
		{"event_time", 4, "TIMESTAMP_MICROS"},
		{"screen_width", 1, "INT64"},
		{"screen_width", 4, ""}, // no UINT_32/UINT_64: signed INT64
		{"screen_width", 8, "IntType(bitWidth=@, isSigned=1)"},
		{"impression_id", 4, "UTF8"},
		{"segments", 4, "LIST"},
		{"segments", 7, "10"},
		{"labels", 4, "MAP"},
		{"key_value", 3, "REPEATED"},
		{"key", 3, "REQUIRED"},
		{"element", 3, "REQUIRED"},
		{"trace_context", 4, ""},
	}
	for _, c := range checks {
		if r := byName[c.name]; r == nil || r[c.col] != c.want {
			t.Errorf("%s column %d = %v, want %q", c.name, c.col, r, c.want)
		}
	}
}
