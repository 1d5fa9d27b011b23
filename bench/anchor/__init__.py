"""The anchor of bench/hotpath.py: a minimal Django + DRF project (one APIView, one Redis GET), served by
gunicorn with our API's own settings, to show what this machine gives any Django API before our code."""
