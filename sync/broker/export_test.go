package broker

// QuickAcked is Dial's connection opener, for the tests.
var QuickAcked = quickAcked
