"""One hook per service; each reads its Airflow Connection once."""
