package adtrack

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/protolake/protolake/internal/adtrackpb"
)

// DefaultImpressionTopic is the topic AdTrack publishes impressions to.
const DefaultImpressionTopic = "ads.click.stream"

// DefaultClickTopic is the topic TrackClick publishes clicks to.
const DefaultClickTopic = "ads.clicks"

// Service implements adtrackpb.ClickTrackServiceServer on top of a Kafka
// producer.
type Service struct {
	adtrackpb.UnimplementedClickTrackServiceServer

	client          *kgo.Client
	impressionTopic string
	clickTopic      string
	prefix          map[string][]byte // per topic: bytes written before each message
}

// SetValuePrefix makes the service write prefix before every message it
// publishes to topic: a schema-registry serializer's framing (magic byte,
// schema id, message indexes). Call it before serving.
func (s *Service) SetValuePrefix(topic string, prefix []byte) {
	if s.prefix == nil {
		s.prefix = map[string][]byte{}
	}
	s.prefix[topic] = prefix
}

var _ adtrackpb.ClickTrackServiceServer = (*Service)(nil)

// NewService returns a service that produces with client; empty topic names
// take the defaults.
func NewService(client *kgo.Client, impressionTopic, clickTopic string) *Service {
	if impressionTopic == "" {
		impressionTopic = DefaultImpressionTopic
	}
	if clickTopic == "" {
		clickTopic = DefaultClickTopic
	}
	return &Service{client: client, impressionTopic: impressionTopic, clickTopic: clickTopic}
}

// AdTrack publishes the impression's wire bytes to the impression topic.
func (s *Service) AdTrack(ctx context.Context, imp *adtrackpb.AdImpression) (*adtrackpb.AdTrackResponse, error) {
	if imp.GetImpressionId() == "" {
		return nil, status.Error(codes.InvalidArgument, "impression_id is required")
	}
	return s.publish(ctx, s.impressionTopic, imp.GetImpressionId(), imp)
}

// TrackClick publishes the click's wire bytes to the click topic.
func (s *Service) TrackClick(ctx context.Context, click *adtrackpb.AdClick) (*adtrackpb.AdTrackResponse, error) {
	if click.GetImpressionId() == "" {
		return nil, status.Error(codes.InvalidArgument, "impression_id is required")
	}
	return s.publish(ctx, s.clickTopic, click.GetImpressionId(), click)
}

func (s *Service) publish(ctx context.Context, topic, key string, m proto.Message) (*adtrackpb.AdTrackResponse, error) {
	b, err := proto.MarshalOptions{}.MarshalAppend(append([]byte(nil), s.prefix[topic]...), m)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "marshal: %v", err)
	}
	r, err := s.client.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: b}).First()
	if err != nil {
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("publish to %s: %v", topic, err))
	}
	return &adtrackpb.AdTrackResponse{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, nil
}
