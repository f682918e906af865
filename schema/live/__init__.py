"""The live part of the GraphQL API: subscriptions and what they need to run over a WebSocket."""
