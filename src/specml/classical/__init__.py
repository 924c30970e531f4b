"""Classical models (scikit-learn, XGBoost, LightGBM, CatBoost) through the same verbs."""
