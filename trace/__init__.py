"""The domain engine: custody rules, projections, lifecycle graph, rates and reports."""
