"""akool_flows: run the Akool AI media API at scale from Airflow and Jupyter."""

__version__ = "0.1.0"
