"""What a message is and how a request is read: headers, options, durations, destinations,
ids and the JSON views clients see. No I/O: everything here is a pure function of its input."""
