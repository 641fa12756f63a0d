# Fundus data: field-of-view preprocessing, grade-label readers, procedural phantoms, and the library half of dataset_tool.py.
