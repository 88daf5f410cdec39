// Package broker is the seam between the sync code and an MQTT broker: a
// publisher/subscriber interface of four methods (Conn), the one-method
// Publisher that head office's ack and summary senders need, and their
// paho implementation (Dial, PahoPublisher).
//
// The uplink holds a Conn, never a paho client, so its session logic
// (window, acks, resends) is tested with the function-field fake in
// sync/broker/brokertest and testing/synctest, without a broker. The tests
// against a real mosquitto (sync/mosquittotest) stay the truth about the
// broker itself.
package broker
