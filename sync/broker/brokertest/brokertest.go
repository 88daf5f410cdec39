package brokertest

import (
	"sync"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/broker"
)

// Conn is a broker.Conn made of function fields.
type Conn struct {
	PublishFunc   func(topic string, qos byte, retained bool, payload []byte) broker.Token
	SubscribeFunc func(filters map[string]byte) broker.Token
	LostFunc      func() <-chan struct{}
	CloseFunc     func(quiesce time.Duration)
}

var _ broker.Conn = (*Conn)(nil)

// Publish calls PublishFunc.
func (c *Conn) Publish(topic string, qos byte, retained bool, payload []byte) broker.Token {
	return c.PublishFunc(topic, qos, retained, payload)
}

// Subscribe calls SubscribeFunc.
func (c *Conn) Subscribe(filters map[string]byte) broker.Token { return c.SubscribeFunc(filters) }

// Lost calls LostFunc.
func (c *Conn) Lost() <-chan struct{} { return c.LostFunc() }

// Close calls CloseFunc.
func (c *Conn) Close(quiesce time.Duration) { c.CloseFunc(quiesce) }

// Publisher is a broker.Publisher made of a function field.
type Publisher struct {
	PublishFunc func(topic string, qos byte, retained bool, payload []byte) broker.Token
}

var _ broker.Publisher = (*Publisher)(nil)

// Publish calls PublishFunc.
func (p *Publisher) Publish(topic string, qos byte, retained bool, payload []byte) broker.Token {
	return p.PublishFunc(topic, qos, retained, payload)
}

// Token is a broker.Token that completes when the test calls Complete.
type Token struct {
	done chan struct{}
	once sync.Once
	err  error
}

var _ broker.Token = (*Token)(nil)

// NewToken returns a token still in progress.
func NewToken() *Token { return &Token{done: make(chan struct{})} }

// Done returns a token already completed with err.
func Done(err error) *Token {
	t := NewToken()
	t.Complete(err)
	return t
}

// Complete finishes the operation with err (nil: success). Only the first
// call counts.
func (t *Token) Complete(err error) {
	t.once.Do(func() {
		t.err = err
		close(t.done)
	})
}

// Done implements broker.Token.
func (t *Token) Done() <-chan struct{} { return t.done }

// Error implements broker.Token; it is nil until Complete.
func (t *Token) Error() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}
