"""The notifications part of the GraphQL API: operators' webhooks, drivers' notifications."""
