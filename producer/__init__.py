"""twentyq's ambassador library: the wire contract and the calls that send turns."""
