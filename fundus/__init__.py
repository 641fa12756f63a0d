# The fundus domain: preprocessing, label readers, procedural phantoms, reports and the demo.
