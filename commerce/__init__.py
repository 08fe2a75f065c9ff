"""lianbo's domain core: values in, values or plans out. No I/O, no clock, no randomness."""
