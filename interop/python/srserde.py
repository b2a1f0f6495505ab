"""Payment messages serialized by Confluent's Python ProtobufSerializer
(confluent-kafka on PyPI): the interop tier's real schema-registry
serializer. The message classes are built at run time from descriptors
(no protoc needed); version 1 is Payment{id, amount: shop.common.Money},
version 2 adds `method` (compatible), version 3 makes `id` an int64
(breaking). Money is its own file, so the serializer registers it as a
reference under its own subject.
"""

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

F = descriptor_pb2.FieldDescriptorProto


def _field(name, number, typ, type_name=None):
    f = F(name=name, number=number, type=typ, label=F.LABEL_OPTIONAL)
    if type_name:
        f.type_name = type_name
    return f


def payment_class(version):
    """The generated-like class of shop.v1.Payment at schema version 1, 2 or 3."""
    pool = descriptor_pool.DescriptorPool()
    money = descriptor_pb2.FileDescriptorProto(name="shop/common/money.proto", package="shop.common", syntax="proto3")
    money.message_type.add(name="Money", field=[_field("currency", 1, F.TYPE_STRING), _field("units", 2, F.TYPE_INT64)])
    pool.Add(money)
    pay = descriptor_pb2.FileDescriptorProto(name="shop/v1/payment.proto", package="shop.v1", syntax="proto3",
                                             dependency=["shop/common/money.proto"])
    fields = [_field("id", 1, F.TYPE_INT64 if version == 3 else F.TYPE_STRING),
              _field("amount", 2, F.TYPE_MESSAGE, ".shop.common.Money")]
    if version >= 2:
        fields.append(_field("method", 3, F.TYPE_STRING))
    pay.message_type.add(name="Payment", field=fields)
    pool.Add(pay)
    return GetMessageClass(pool.FindMessageTypeByName("shop.v1.Payment"))


def produce(brokers, registry_url, topic, version, indexes, schema_id=None):
    """Produces payment i for each i in indexes, serialized at version;
    returns the schema id the serializer framed them with. With schema_id,
    the serializer's framing gets that id instead (bytes 1-4): a record
    whose id the registry does not know."""
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    cls = payment_class(version)
    ser = ProtobufSerializer(cls, SchemaRegistryClient({"url": registry_url}), {})
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    ctx = SerializationContext(topic, MessageField.VALUE)
    value = None
    for i in indexes:
        m = cls()
        m.id = i if version == 3 else f"p-{i:05d}"
        m.amount.currency, m.amount.units = "EUR", i
        if version >= 2:
            m.method = "card"
        value = ser(m, ctx)
        if schema_id is not None:
            value = value[:1] + schema_id.to_bytes(4, "big") + value[5:]
        p.produce(topic, value=value, key=str(i).encode())
    if p.flush(60) != 0:
        raise RuntimeError("records not delivered")
    return int.from_bytes(value[1:5], "big")
