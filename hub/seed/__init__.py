"""The demo city: a deterministic Shenzhen of operators, lots, curb zones and spaces, loaded with COPY."""
