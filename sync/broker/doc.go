// Package broker is the seam between the sync code and an MQTT broker: a
// publisher/subscriber interface of four methods (Conn), the one-method
// Publisher that head office's ack and summary senders need, and their
// paho implementation (Dial, PahoPublisher). Buffered opens paho's
// connection with buffered reads and coalesced writes (head office's
// client, which receives tens of thousands of messages a second); Dial's
// (a register's) also acknowledges what it reads at once, so the
// broker's Nagle does not hold head office's ack for 40 ms.
//
// The uplink holds a Conn, never a paho client, so its session logic
// (window, acks, resends) is tested with the function-field fake in
// sync/broker/brokertest and testing/synctest, without a broker. The tests
// against a real mosquitto (sync/mosquittotest) stay the truth about the
// broker itself.
package broker
