package registry

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protolake/protolake/schema"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const moneyProto = `syntax = "proto3";
package shop.common;
message Money { string currency = 1; int64 units = 2; }
`

const addressProto = `syntax = "proto3";
package shop.common;
import "shop/common/money.proto";
message Address { string city = 1; shop.common.Money delivery_fee = 2; }
`

const orderProto = `syntax = "proto3";
package shop.v1;
import "shop/common/address.proto";
import "google/protobuf/timestamp.proto";
message Order {
  string id = 1;
  shop.common.Address ship_to = 2;
  google.protobuf.Timestamp placed_at = 3;
  message Line { string sku = 1; int32 qty = 2; message Note { string text = 1; } }
  repeated Line lines = 4;
}
message Refund { string order_id = 1; }
`

// seedShop registers money ← address ← order across three subjects and
// returns the order schema's id.
func seedShop(t *testing.T, reg *srfake.Registry) int {
	t.Helper()
	if _, _, err := reg.RegisterSchema("shop.common.money", sr.Schema{Schema: moneyProto, Type: sr.TypeProtobuf}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.RegisterSchema("shop.common.address", sr.Schema{Schema: addressProto, Type: sr.TypeProtobuf,
		References: []sr.SchemaReference{{Name: "shop/common/money.proto", Subject: "shop.common.money", Version: 1}}}); err != nil {
		t.Fatal(err)
	}
	id, _, err := reg.RegisterSchema("orders-value", sr.Schema{Schema: orderProto, Type: sr.TypeProtobuf,
		References: []sr.SchemaReference{{Name: "shop/common/address.proto", Subject: "shop.common.address", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// counting counts the registry requests whose path has prefix.
func counting(reg *srfake.Registry) *atomic.Int64 {
	var n atomic.Int64
	reg.Intercept(func(_ http.ResponseWriter, _ *http.Request) bool { n.Add(1); return false })
	return &n
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSchemaWithReferencesAcrossSubjects(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	id := seedShop(t, reg)
	c := newClient(t, Config{URL: reg.URL()})
	ctx := context.Background()
	s, err := c.Schema(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		index []int
		want  protoreflect.FullName
	}{
		{nil, "shop.v1.Order"},
		{[]int{0}, "shop.v1.Order"},
		{[]int{1}, "shop.v1.Refund"},
		{[]int{0, 0}, "shop.v1.Order.Line"},
		{[]int{0, 0, 0}, "shop.v1.Order.Line.Note"},
	} {
		md, err := s.Message(tc.index)
		if err != nil {
			t.Fatalf("Message(%v): %v", tc.index, err)
		}
		if md.FullName() != tc.want {
			t.Errorf("Message(%v) = %s, want %s", tc.index, md.FullName(), tc.want)
		}
		back, ok := s.MessageIndex(tc.want)
		if !ok || (len(tc.index) > 0 && !equalInts(back, tc.index)) {
			t.Errorf("MessageIndex(%s) = %v, %v; want %v", tc.want, back, ok, tc.index)
		}
	}
	// The referenced types resolved, two levels deep.
	md, _ := s.Message(nil)
	fee := md.Fields().ByName("ship_to").Message().Fields().ByName("delivery_fee").Message()
	if fee.FullName() != "shop.common.Money" || fee.Fields().ByName("units") == nil {
		t.Fatalf("ship_to.delivery_fee resolved to %s", fee.FullName())
	}
	if _, err := s.Message([]int{2}); !errors.As(err, new(*SchemaError)) {
		t.Fatalf("Message([2]) = %v, want a *SchemaError", err)
	}
	if _, err := s.Message([]int{0, 1}); !errors.As(err, new(*SchemaError)) {
		t.Fatalf("Message([0 1]) = %v, want a *SchemaError", err)
	}
	vs, err := c.Versions(ctx, id)
	if err != nil || len(vs) != 1 || vs[0] != (SubjectVersion{Subject: "orders-value", Version: 1}) {
		t.Fatalf("Versions = %v, %v", vs, err)
	}
	got, sv, err := c.SubjectVersion(ctx, "orders-value", -1)
	if err != nil || got.ID != id || sv.Version != 1 {
		t.Fatalf("SubjectVersion(latest) = %v, %v, %v", got, sv, err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCachesAreUsedAndBounded(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	id := seedShop(t, reg)
	n := counting(reg)
	c := newClient(t, Config{URL: reg.URL(), CacheSize: 2})
	ctx := context.Background()
	if _, err := c.Schema(ctx, id); err != nil {
		t.Fatal(err)
	}
	first := n.Load()
	if first != 3 { // the schema and its two references
		t.Fatalf("first lookup made %d requests, want 3", first)
	}
	for range 5 {
		if _, err := c.Schema(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != first {
		t.Fatalf("cached lookups made %d more requests", n.Load()-first)
	}
	// Two other ids evict the first (cache size 2).
	for _, id := range []int{1, 2} {
		if _, err := c.Schema(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if c.schemas.len() != 2 {
		t.Fatalf("%d schemas cached, want the bound 2", c.schemas.len())
	}
	before := n.Load()
	if _, err := c.Schema(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n.Load() == before {
		t.Fatal("an evicted schema was served without asking the registry")
	}
}

func TestUnknownIDIsNotFoundAndRemembered(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	seedShop(t, reg)
	n := counting(reg)
	c := newClient(t, Config{URL: reg.URL(), NegativeTTL: time.Hour})
	for range 3 {
		_, err := c.Schema(context.Background(), 999)
		if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Schema(999) = %v, want ErrNotFound", err)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("%d requests for an unknown id, want 1 (remembered)", n.Load())
	}
}

func TestUnavailable(t *testing.T) {
	reg := srfake.New()
	id := seedShop(t, reg)
	reg.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, `{"error_code":50001,"message":"store down"}`, http.StatusServiceUnavailable)
		return true
	})
	c := newClient(t, Config{URL: reg.URL()})
	if _, err := c.Schema(context.Background(), id); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("503: %v, want ErrUnavailable", err)
	}
	reg.ClearInterceptors()
	if _, err := c.Schema(context.Background(), id); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	reg.Close()
	c2 := newClient(t, Config{URL: reg.URL()})
	if _, err := c2.Schema(context.Background(), id); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("registry gone: %v, want ErrUnavailable", err)
	}
	// A cached schema is served while the registry is gone.
	if _, err := c.Schema(context.Background(), id); err != nil {
		t.Fatalf("cached schema while the registry is gone: %v", err)
	}
}

func TestAuth(t *testing.T) {
	t.Setenv("TEST_SR_PASSWORD", "s3cret")
	t.Setenv("TEST_SR_TOKEN", "tok")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	for _, tc := range []struct {
		name   string
		expect string
		cfg    Config
		ok     bool
	}{
		{"basic", basic, Config{Username: "alice", PasswordEnv: "TEST_SR_PASSWORD"}, true},
		{"bearer", "Bearer tok", Config{BearerTokenEnv: "TEST_SR_TOKEN"}, true},
		{"wrong", "Bearer other", Config{BearerTokenEnv: "TEST_SR_TOKEN"}, false},
		{"none", "Bearer tok", Config{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := srfake.New(srfake.WithAuth(tc.expect))
			defer reg.Close()
			id := seedShop(t, reg)
			tc.cfg.URL = reg.URL()
			_, err := newClient(t, tc.cfg).Schema(context.Background(), id)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			// A rejected credential is the registry's or the config's
			// problem, never the record's.
			if !tc.ok && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestBadSchemas(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	avro, _, _ := reg.RegisterSchema("avro-value", sr.Schema{Schema: `{"type":"string"}`, Type: sr.TypeAvro})
	broken, _, _ := reg.RegisterSchema("broken-value", sr.Schema{Schema: `syntax = "proto3"; message X { strin a = 1; }`, Type: sr.TypeProtobuf})
	missing, _, _ := reg.RegisterSchema("missing-value", sr.Schema{Schema: `syntax = "proto3"; import "nope.proto"; message X { Y a = 1; }`, Type: sr.TypeProtobuf})
	c := newClient(t, Config{URL: reg.URL()})
	for name, id := range map[string]int{"avro": avro, "broken": broken, "missing import": missing} {
		_, err := c.Schema(context.Background(), id)
		var se *SchemaError
		if !errors.As(err, &se) || se.ID != id {
			t.Errorf("%s (id %d): %v, want a *SchemaError", name, id, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want bool
	}{
		{Config{URL: "http://r:8081"}, true},
		{Config{URL: "http://r:8080/apis/ccompat/v7"}, true},
		{Config{}, false},
		{Config{URL: "r:8081"}, false},
		{Config{URL: "http://r", Username: "a", BearerTokenEnv: "X"}, false},
		{Config{URL: "http://r", PasswordEnv: "HOME"}, false},
		{Config{URL: "http://r", BearerTokenEnv: "PLTEST_UNSET_VAR"}, false},
		{Config{URL: "http://r", TLS: TLSConfig{CertFile: "x"}}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.want {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.cfg, err, tc.want)
		}
	}
}

// TestSerializedSchemas reads schemas registered as base64
// FileDescriptorProtos (Confluent's Python serializer registers them so; a
// registry that keeps schemas as given returns them so), with a reference.
func TestSerializedSchemas(t *testing.T) {
	ctx := context.Background()
	files, err := schema.CompileSources(ctx, map[string]string{"shop/common/money.proto": moneyProto, "shop/v1/pay.proto": `syntax = "proto3";
package shop.v1;
import "shop/common/money.proto";
import "google/protobuf/timestamp.proto";
message Pay { string id = 1; shop.common.Money amount = 2; google.protobuf.Timestamp at = 3; }
`}, "shop/v1/pay.proto")
	if err != nil {
		t.Fatal(err)
	}
	ser := func(path string) string {
		fd, err := files.FindFileByPath(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(protodesc.ToFileDescriptorProto(fd))
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	reg := srfake.New()
	defer reg.Close()
	if _, _, err := reg.RegisterSchema("shop/common/money.proto", sr.Schema{Schema: ser("shop/common/money.proto"), Type: sr.TypeProtobuf}); err != nil {
		t.Fatal(err)
	}
	id, _, err := reg.RegisterSchema("pay-value", sr.Schema{Schema: ser("shop/v1/pay.proto"), Type: sr.TypeProtobuf,
		References: []sr.SchemaReference{{Name: "shop/common/money.proto", Subject: "shop/common/money.proto", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newClient(t, Config{URL: reg.URL()}).Schema(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	md, err := s.Message(nil)
	if err != nil {
		t.Fatal(err)
	}
	if md.FullName() != "shop.v1.Pay" || md.Fields().ByName("amount").Message().FullName() != "shop.common.Money" ||
		md.Fields().ByName("at").Message().FullName() != "google.protobuf.Timestamp" {
		t.Fatalf("resolved %s with fields %v", md.FullName(), md.Fields())
	}
	if _, ok := serializedDescriptor(orderProto); ok {
		t.Fatal(".proto text taken for a serialized descriptor")
	}
}

// TestTLS reaches a registry over https with the CA from tls.ca_file, and
// refuses one whose certificate it cannot verify.
func TestTLS(t *testing.T) {
	reg := srfake.NewRegistry()
	srv := httptest.NewTLSServer(reg.Handler())
	defer srv.Close()
	id, _, err := reg.RegisterSchema("m-value", sr.Schema{Schema: moneyProto, Type: sr.TypeProtobuf})
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, Config{URL: srv.URL, TLS: TLSConfig{CAFile: ca}}).Schema(context.Background(), id); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	if _, err := newClient(t, Config{URL: srv.URL}).Schema(context.Background(), id); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("without the CA: %v, want ErrUnavailable", err)
	}
}
