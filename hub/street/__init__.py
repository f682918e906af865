"""On-street sessions by space code: prepaid by drivers, or started and ended by curb cameras and bay sensors."""
